"""The loopback OSS fake as the tests use it: one bucket and its credentials."""

AK = "LTAI-test-access-key"
SECRET = "oss-SECRET-d0n7-l34k-8f3a9c"
BUCKET = "easel-test"
