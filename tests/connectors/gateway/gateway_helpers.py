"""Constants the gateway tests share (a uniquely named module: every test folder has its own conftest)."""
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
