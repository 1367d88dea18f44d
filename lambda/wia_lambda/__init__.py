"""The WIA Security AWS Lambda forwarder: one handler for SQS, Kinesis, EventBridge, S3 and HTTP triggers.

Handler string: `wia_lambda.handler.handler`. Configuration, secrets and deployment: docs/cloud/aws.md.
"""
