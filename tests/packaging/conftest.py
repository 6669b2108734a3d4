from tests.server.conftest import env, replicate_fake  # noqa: F401  (the fake Replicate and the server's env)
