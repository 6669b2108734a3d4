"""The loopback Replicate fake as most tests use it: its token and settings that keep waits short."""

TOKEN = "r8_secret_test_token_0123456789"

FAST = {
    "EASEL_POLL_INTERVAL": "0.01", "EASEL_POLL_MAX": "0.05", "EASEL_WAIT_WINDOW": "1",
    "EASEL_PROGRESS_INTERVAL": "0.05", "EASEL_MAX_RETRIES": "2",
}
