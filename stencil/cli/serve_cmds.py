"""`stencil serve` (the HTTP API) and `stencil keys create|list|revoke` (its API keys)."""

from __future__ import annotations

import typer

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="API keys of the HTTP API (each belongs to a tenant).")
    app.add_typer(keys, name="keys", no_args_is_help=True)

    @app.command("serve")
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", "--host", envvar="STENCIL_API_HOST"),
        port: int = typer.Option(8000, "--port", envvar="STENCIL_API_PORT"),
        workers: int = typer.Option(
            1, "--workers", envvar="STENCIL_API_WORKERS", min=1, help="API processes."
        ),
        run_here: bool | None = typer.Option(
            None,
            "--run/--no-run",
            help="Also run a scheduler and a worker here (default: on the embedded default only).",
        ),
        concurrency: int = typer.Option(
            8, "--concurrency", envvar="STENCIL_WORKER_CONCURRENCY", help="Worker threads (--run)."
        ),
        log_level: str = typer.Option("info", "--log-level", envvar="STENCIL_API_LOG_LEVEL"),
        access_log: bool = typer.Option(
            False, "--access-log", envvar="STENCIL_API_ACCESS_LOG", help="Log every request."
        ),
    ) -> None:
        """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs)."""
        from api.serve import serve

        serve(
            host=host,
            port=port,
            workers=workers,
            run_here=run_here,
            concurrency=concurrency,
            log_level=log_level,
            access_log=access_log,
        )

    @keys.command("create")
    def create_cmd(
        name: str = typer.Argument(..., help="A name for the key (and for its new tenant)."),
        tenant: str | None = typer.Option(
            None, "--tenant", help="Add the key to this tenant (t_...) instead of a new one."
        ),
        spend_cap: float | None = typer.Option(
            None, "--spend-cap", help="A new tenant's cap on spend across its requests, USD."
        ),
        submits_per_minute: int | None = typer.Option(
            None, "--submits-per-minute", min=1, help="This key's submit rate limit."
        ),
        as_json: bool = JSON_OPT,
    ) -> None:
        """Make an API key; it is printed once (only its hash is stored)."""
        from api.keys import create_key
        from stencil.cli.common import ready
        from stencil.cli.output import print_json, say

        ready()
        made = create_key(
            name, tenant_id=tenant, spend_cap_usd=spend_cap, submits_per_minute=submits_per_minute
        )
        if as_json:
            print_json(made)
            return
        typer.echo(made["key"])
        say(
            f"key {made['key_id']} of tenant {made['tenant']} ({made['tenant_name']}): shown "
            "once, stored only as a hash (webhook secret: GET /v1/webhooks/secret)",
            err=True,
        )

    @keys.command("list")
    def list_cmd(as_json: bool = JSON_OPT) -> None:
        """Every key: id, name, tenant, first characters, created, revoked."""
        from api.keys import list_keys
        from stencil.cli.common import ready
        from stencil.cli.output import print_json, say

        ready()
        found = list_keys()
        if as_json:
            print_json(found)
            return
        for key in found:
            state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
            say(
                f"{key['key_id']}  {key['prefix']}  {key['tenant']} ({key['tenant_name']})  "
                f"{key['name']}  {state}"
            )

    @keys.command("revoke")
    def revoke_cmd(key_id: str = typer.Argument(..., help="The key's id (k_...)."),
                   as_json: bool = JSON_OPT) -> None:  # fmt: skip
        """Revoke a key: it is refused (401) from now on."""
        from api.keys import revoke_key
        from stencil.cli.common import ready
        from stencil.cli.output import print_json, say

        ready()
        result = revoke_key(key_id)
        if as_json:
            print_json(result)
        else:
            say(f"revoked {key_id}")
