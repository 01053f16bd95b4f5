"""Cost of issuing and of verifying an access token.

    .venv/bin/python -m bench.token_bench [--n 2000]

In process: client authentication (parse, key lookup in SQLite, signature check, claims, durable
jti insert) plus signing the token; verifying a token plus the per-request client lookup that
makes suspension take effect at once. Over HTTP on loopback: POST /oauth2/token and
GET /v1/whoami through uvicorn, one connection, one request at a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.stats import summary
from broker.auth.assertion import ASSERTION_TYPE, authenticate_client
from broker.auth.client_assertion import make_client_assertion
from broker.observability import configure_logging
from tests.support import live_broker, new_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="samples per measurement")
    args = parser.parse_args()
    configure_logging("WARNING")
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_broker(Path(tmp), f"sqlite:///{tmp}/bench.db") as broker,
    ):
        services = broker.services
        keys = {}
        for kind in ("EC", "RSA"):
            client_id = f"bench-{kind.lower()}"
            key = keys[kind] = broker.register(client_id, ("exchange",), key=new_key(kind))
            forms = [
                {
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": make_client_assertion(client_id, key, broker.token_url),
                }
                for _ in range(args.n)
            ]
            issue: list[float] = []
            tokens = []
            for form in forms:
                started = time.perf_counter()
                client = authenticate_client(
                    form, services.registry, services.replay, services.assertion_rules, time.time
                )
                tokens.append(services.tokens.issue(client, list(client.scopes)).access_token)
                issue.append(time.perf_counter() - started)
            alg = "ES256" if kind == "EC" else "RS512"
            print(f"issue  (in process, {alg} assertion, durable jti): {summary(issue)}")
        verify: list[float] = []
        for token in tokens:
            started = time.perf_counter()
            claims = services.tokens.verify(token)
            services.registry.find_client(claims.client_id)
            verify.append(time.perf_counter() - started)
        print(f"verify (in process, ES256 + client lookup):        {summary(verify)}")

        http_issue: list[float] = []
        for form in [broker.token_form("bench-ec", keys["EC"]) for _ in range(args.n // 4)]:
            started = time.perf_counter()
            response = broker.http.post("/oauth2/token", data=form)
            http_issue.append(time.perf_counter() - started)
            assert response.status_code == 200
        print(f"issue  (HTTP loopback, POST /oauth2/token):        {summary(http_issue)}")
        http_verify: list[float] = []
        token = tokens[0]
        for _ in range(args.n // 4):
            started = time.perf_counter()
            response = broker.get("/v1/whoami", token)
            http_verify.append(time.perf_counter() - started)
            assert response.status_code == 200
        print(f"verify (HTTP loopback, GET /v1/whoami):            {summary(http_verify)}")


if __name__ == "__main__":
    main()
