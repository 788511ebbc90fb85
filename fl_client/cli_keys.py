"""`fl-client keys`: the federation's HE key ceremony and a look at context files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from privacy.he import DEFAULT_PARAMS, HEError, HEParams, generate_keys, read_context_info

keys_app = typer.Typer(
    help="Homomorphic-encryption keys of the federation (CKKS).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@keys_app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Option("--out", help="directory to write the two context files")],
    max_examples: Annotated[
        int,
        typer.Option(
            help="largest training set one institution may weigh in with; larger sizes "
            "cost precision (docs/he_parameters.md)"
        ),
    ] = DEFAULT_PARAMS.max_weight,
    max_abs_value: Annotated[
        float, typer.Option(help="bound on |model weight| x weight fraction an update may hold")
    ] = DEFAULT_PARAMS.max_abs_value,
    ring: Annotated[
        int, typer.Option(help="CKKS ring degree (advanced; see docs/he_parameters.md)")
    ] = DEFAULT_PARAMS.poly_modulus_degree,
    prime_bits: Annotated[
        list[int] | None,
        typer.Option(help="bits of each modulus prime, repeatable (advanced)"),
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite existing context files")] = False,
) -> None:
    """The federation's key ceremony: run it once, before the first encrypted run.

    Who: one trusted institution, or a key custodian acting for all of them, on a machine it controls. It writes two owner-only (0600) files.

    he-secret-context.json (parameters + the secret key) travels only between institutions, out of band (a secrets vault, encrypted mail, a courier), never through the coordinator. Each institution points its node at its own copy.

    he-public-context.json (parameters + a commitment to the key, no key material) goes to the coordinator, which can add ciphertexts with it but can neither decrypt nor encrypt.

    Both carry the same fingerprint: compare it out of band before the first run. Generating new keys makes every model encrypted under the old ones unreadable.
    """
    try:
        params = HEParams(
            poly_modulus_degree=ring,
            coeff_modulus_bits=tuple(prime_bits)
            if prime_bits
            else DEFAULT_PARAMS.coeff_modulus_bits,
            max_abs_value=max_abs_value,
            max_weight=max_examples,
            weight_replicas=DEFAULT_PARAMS.weight_replicas,
        )
        files = generate_keys(out, params, force=force)
    except (HEError, OSError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"secret context (institutions only): {files.secret}")
    console.print(f"public context (coordinator):       {files.public}")
    console.print(f"fingerprint: {files.fingerprint}")


@keys_app.command("show")
def show_command(
    path: Annotated[Path, typer.Argument(help="a context file")],
) -> None:
    """Kind, fingerprint and parameters of a context file; reads no key."""
    try:
        info = read_context_info(path)
    except HEError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    p = info.params
    console.print(f"kind:        {info.kind}")
    console.print(f"fingerprint: {info.fingerprint}")
    console.print(f"created:     {info.created}")
    console.print(
        f"CKKS ring {p.poly_modulus_degree}, primes {list(p.coeff_modulus_bits)} bits, "
        f"max examples {p.max_weight}, max |value| {p.max_abs_value:g}"
    )
