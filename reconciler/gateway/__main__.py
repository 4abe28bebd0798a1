"""``python -m reconciler.gateway``: serve one cloud model's gateway until SIGTERM.

The daemon starts it (the built-in ``cloud-gateway`` template's command); the provider
key arrives in the environment (``RECONCILER_GATEWAY_API_KEY``), never as an argument.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from reconciler.gateway import server


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.gateway",
        description="An OpenAI-compatible gateway to one cloud provider's model.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the provider's base URL")
    parser.add_argument("--provider", required=True, help="e.g. openai, azure_openai")
    parser.add_argument("--provider-model", required=True, help="the model id sent upstream")
    parser.add_argument("--served-model-name", required=True, help="what /v1/models lists")
    parser.add_argument("--max-concurrent", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    try:
        key = server.key_from_environment()
    except ValueError as exc:
        print(f"reconciler.gateway: {exc}", file=sys.stderr)
        return 2
    if args.max_concurrent < 1 or args.timeout <= 0:
        print("reconciler.gateway: --max-concurrent and --timeout must be > 0", file=sys.stderr)
        return 2
    settings = server.GatewaySettings(
        upstream=args.upstream,
        provider=args.provider,
        provider_model=args.provider_model,
        served_model_name=args.served_model_name,
        api_key=key,
        max_concurrent=args.max_concurrent,
        timeout_s=args.timeout,
    )
    logging.getLogger("reconciler.gateway").info(
        "serving %s as %r through %s",
        settings.provider_model,
        settings.served_model_name,
        settings.upstream,
    )
    web.run_app(
        server.create_app(settings), host=args.host, port=args.port, print=None, access_log=None
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
