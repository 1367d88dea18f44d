"""AWS connectors: Security Hub findings (securityhub.py), SQS and S3 dead letters (dead_letter.py)."""
