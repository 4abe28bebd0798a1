"""The steps of a Model's chain: add_model, scan_model, remove_model.

Thin by design: each reads the Model's spec fields from its inputs, calls the model
drivers (reconciler.drivers.models) off the event loop, and returns an outcome. Fields for
the Model's status file go out as ``Done(outputs={"status": {...}})`` under the names of
docs/status.md. What a person must fix is Stalled with a CamelCase
reason first (``GatedRepo:``, ``SecretNotFound:``, ``ScanFailed:``...); an unreachable
source is retried.

The collaborators come from ``StepServices.extra["models"]`` as a :class:`ModelServices`:
the cache folder (downloads, hash cache, records), the credential lookup and download
limits. add_model leaves a record of where the files are, which scan_model and
remove_model read, since chain steps do not see each other's outputs. A hugging_face
Model is only described unless ``download: true``; a local endpoint that needs its files
calls :func:`hub_files_for_endpoint`, which downloads and scans them the same way and
records the folder, which add_model then keeps while the source and commit stay the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from reconciler.core import cloud_providers
from reconciler.drivers import secrets
from reconciler.drivers.models import (
    disk,
    errors,
    hashing,
    huggingface,
    local_metadata,
    records,
    scanners,
    url,
)
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl

MODEL_SERVICE = "models"
_FINDINGS_IN_MESSAGE = 5
_PARAMETERS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMBT]?)$")
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


class CredentialValues(Protocol):
    """Gives the secret value behind a Credential's name."""

    def value_of(self, credential: str) -> str:
        """The value; raise LookupError whose message says where it was looked for."""
        ...


@dataclasses.dataclass(frozen=True)
class SecretStoreCredentials:
    """CredentialValues over the daemon's secret resolver and its loaded Credentials.

    ``secret_names`` maps a Credential's name to its ``spec.secret`` (None: no such
    Credential).
    """

    resolver: secrets.SecretResolver
    secret_names: Callable[[str], str | None]

    def value_of(self, credential: str) -> str:
        secret = self.secret_names(credential)
        if secret is None:
            raise LookupError(f"Credential {credential!r} is not defined in the repo")
        try:
            return self.resolver.resolve(secret)
        except secrets.SecretError as exc:
            raise LookupError(f"Credential {credential!r}: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class ModelServices:
    """What model steps need from the daemon; put it in ``StepServices.extra["models"]``."""

    cache_dir: Path
    credentials: CredentialValues | None = None
    download: url.DownloadSettings = dataclasses.field(default_factory=url.DownloadSettings)
    hf_endpoint: str | None = None
    hash_workers: int | None = None

    def hash_cache(self) -> hashing.HashCache:
        return hashing.HashCache(db_path=self.cache_dir / "hashes.sqlite")


class StepRegistryLike(Protocol):
    def register(self, step_type: str, impl: StepImpl) -> None: ...


def register_model_steps(registry: StepRegistryLike) -> None:
    """Add add_model, scan_model and remove_model to ``registry``."""
    registry.register("add_model", add_model)
    registry.register("scan_model", scan_model)
    registry.register("remove_model", remove_model)


# --- reading inputs --------------------------------------------------------------------


def _services(ctx: StepContext) -> ModelServices:
    found = ctx.services.extra.get(MODEL_SERVICE)
    if not isinstance(found, ModelServices):
        raise outcomes.StalledStepError(
            "ModelCacheMissing: this daemon lends no model cache to steps (services.extra"
            "['models'])"
        )
    return found


def _source(ctx: StepContext) -> Mapping[str, Any]:
    source = ctx.inputs.get("source")
    if not isinstance(source, Mapping) or not isinstance(source.get("provider_type"), str):
        raise outcomes.StalledStepError(f"{ctx.object_key}: spec.source.provider_type is missing")
    return source


def _model_name(ctx: StepContext) -> str:
    name = ctx.inputs.get("model")
    if not isinstance(name, str) or not name:
        raise outcomes.StalledStepError(f"{ctx.object_key}: input 'model' (its name) is missing")
    return name


def credential_token(services: ModelServices, source: Mapping[str, Any]) -> str | None:
    """The value of the source's credential (None: it names none); a credential that
    cannot be resolved stalls the step with SecretNotFound or SecretUnreadable."""
    credential = source.get("credential")
    if not credential:
        return None
    if services.credentials is None:
        raise outcomes.StalledStepError(
            f"SecretNotFound: Credential {credential!r} cannot be resolved: no secret store "
            "is configured on this daemon"
        )
    try:
        return services.credentials.value_of(str(credential))
    except LookupError as exc:
        reason = "SecretUnreadable" if isinstance(exc.__cause__, secrets.SecretUnreadable) else (
            "SecretNotFound"
        )
        raise outcomes.StalledStepError(f"{reason}: {exc}") from exc


def _spec_parameters(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _PARAMETERS.fullmatch(str(value or "").strip().upper())
    return round(float(match.group(1)) * _SCALE[match.group(2)]) if match else None


def _sizing(ctx: StepContext, *, parameters: int | None, dtype: str | None) -> dict[str, Any]:
    """parameters and dtype: the spec's own values win, else what the files say."""
    spec_dtype = ctx.inputs.get("dtype")
    return {
        "parameters": _spec_parameters(ctx.inputs.get("parameters")) or parameters,
        "dtype": spec_dtype if isinstance(spec_dtype, str) else dtype,
    }


_STALLS: tuple[tuple[type[errors.ModelSourceError], str], ...] = (
    (errors.GatedRepoError, "GatedRepo"),
    (errors.UnauthorizedError, "Unauthorized"),
    (errors.SourceNotFoundError, "SourceNotFound"),
    (errors.ChecksumMismatchError, "ChecksumMismatch"),
    (errors.TruncatedDownloadError, "TruncatedDownload"),
    (errors.DownloadTooLargeError, "DownloadTooLarge"),
    (errors.UnsafeArchiveError, "UnsafeArchive"),
    (errors.DiskSourceError, "DiskSourceUnreadable"),
    (errors.DownloadError, "DownloadFailed"),
)


def _outcome_of(exc: errors.ModelSourceError) -> outcomes.Outcome:
    if isinstance(exc, errors.SourceUnavailableError):
        return outcomes.Retry(str(exc))
    for kind, reason in _STALLS:
        if isinstance(exc, kind):
            return outcomes.Stalled(f"{reason}: {exc}")
    return outcomes.Retry(str(exc))


def _outcome_on_step_error(impl: StepImpl) -> StepImpl:
    """The step, returning (not raising) the outcome a StepError from its input checks means."""

    async def run(ctx: StepContext) -> outcomes.Outcome:
        try:
            return await impl(ctx)
        except outcomes.StepError as exc:
            return outcomes.outcome_from_exception(exc)

    return run


# --- add_model -------------------------------------------------------------------------


async def _local_status(ctx: StepContext, services: ModelServices, root: Path) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        cache = services.hash_cache()
        try:
            files = hashing.hash_files(root=root, cache=cache, workers=services.hash_workers)
        finally:
            cache.close()
        meta = local_metadata.describe(root=root, files=files)
        return {
            "files": [entry.as_status() for entry in files],
            "size_bytes": hashing.total_size(files),
            "config": meta.config,
            **_sizing(ctx, parameters=meta.parameters, dtype=meta.dtype),
        }

    return await asyncio.to_thread(work)


async def _describe_hub(
    ctx: StepContext,
    services: ModelServices,
    *,
    source: Mapping[str, Any],
    token: str | None,
    revision: str | None = None,
) -> huggingface.RepoDescription:
    """Resolve the source's revision (or ``revision``, a recorded commit) on the hub."""
    repo_id = str(source.get("uri"))
    wanted = revision or str(source.get("revision") or "main")
    described = await asyncio.to_thread(
        huggingface.describe_repo,
        repo_id=repo_id,
        revision=wanted,
        token=token,
        cache_dir=services.cache_dir / "hf",
        endpoint=services.hf_endpoint,
    )
    ctx.log.info(f"{repo_id}@{wanted} resolved to {described.commit_sha}")
    return described


async def _download_hub(
    ctx: StepContext,
    services: ModelServices,
    *,
    described: huggingface.RepoDescription,
    token: str | None,
) -> Path:
    """Fetch every file of the described commit into the shared hub cache."""
    ctx.log.info(
        f"downloading {len(described.files)} file(s), {described.size_bytes} bytes, of "
        f"{described.repo_id}@{described.commit_sha} into the model cache"
    )
    root = await asyncio.to_thread(
        huggingface.download,
        repo_id=described.repo_id,
        commit_sha=described.commit_sha,
        paths=[f.path for f in described.files],
        token=token,
        cache_dir=services.cache_dir / "hf",
        endpoint=services.hf_endpoint,
    )
    ctx.log.info(f"{described.repo_id}@{described.commit_sha} is at {root}")
    return root


async def _add_hugging_face(
    ctx: StepContext, services: ModelServices, source: Mapping[str, Any]
) -> tuple[dict[str, Any], Path | None]:
    token = credential_token(services, source)
    described = await _describe_hub(ctx, services, source=source, token=token)
    status: dict[str, Any] = {
        "resolved_revision": described.commit_sha,
        "license": described.license,
        "gated": described.gated,
        "pipeline_tag": described.pipeline_tag,
    }
    if ctx.inputs.get("download") is True:
        root = await _download_hub(ctx, services, described=described, token=token)
        local = await _local_status(ctx, services, root)
        if local["parameters"] is None:
            local.update(_sizing(ctx, parameters=described.parameters, dtype=described.dtype))
        return {**status, **local}, root
    status.update(
        files=[f.as_status() for f in described.files],
        size_bytes=described.size_bytes,
        config=described.config,
        **_sizing(ctx, parameters=described.parameters, dtype=described.dtype),
    )
    return status, None


async def _add_cloud(services: ModelServices, source: Mapping[str, Any]) -> dict[str, Any]:
    provider, uri = str(source.get("provider")), str(source.get("uri"))
    try:
        parts = cloud_providers.validate_uri(provider=provider, uri=uri)
    except cloud_providers.CloudUriError as exc:
        raise outcomes.StalledStepError(f"InvalidModelUri: {exc}") from exc
    credential_token(services, source)  # the credential must resolve; its value is not kept
    return {"cloud": {"provider": provider, **parts}}


async def _add_model(ctx: StepContext) -> outcomes.Outcome:
    services, source, name = _services(ctx), _source(ctx), _model_name(ctx)
    provider_type = source["provider_type"]
    root: Path | None = None
    try:
        if provider_type == "hugging_face":
            status, root = await _add_hugging_face(ctx, services, source)
        elif provider_type == "cloud_model":
            status = await _add_cloud(services, source)
        elif provider_type == "url":
            root = await url.fetch(
                url=str(source.get("uri")),
                sha256=str(source.get("sha256")),
                dest_dir=services.cache_dir / "url",
                settings=services.download,
                token=credential_token(services, source),
            )
            status = await _local_status(ctx, services, root)
        elif provider_type == "disk":
            root = disk.check_path(Path(str(source.get("uri"))))
            status = await _local_status(ctx, services, root)
        else:
            return outcomes.Stalled(f"UnknownProviderType: {provider_type!r}")
    except errors.ModelSourceError as exc:
        return _outcome_of(exc)
    skip = ctx.inputs.get("security_scan") == "skip"
    if skip and provider_type != "cloud_model":
        status["scan"] = scanners.skipped().as_status()
    plain = _plain(source)
    if root is None and provider_type == "hugging_face":
        previous = await asyncio.to_thread(
            records.read_record, cache_dir=services.cache_dir, model=name
        )
        root = _kept_download(previous, source=plain, revision=status.get("resolved_revision"))
    record = {
        "source": plain,
        "root": str(root) if root else None,
        "revision": status.get("resolved_revision"),
        "security_scan": "skip" if skip else "required",
    }
    await asyncio.to_thread(
        records.write_record, cache_dir=services.cache_dir, model=name, record=record
    )
    ctx.log.info(f"{ctx.object_key}: {len(status.get('files', []))} file(s) listed")
    return outcomes.Done(outputs={"model_id": name, "status": status})


def _plain(source: Mapping[str, Any]) -> Any:
    """The source as JSON values, as records keep it."""
    return json.loads(json.dumps(source, default=str))


def _kept_download(
    previous: Mapping[str, Any] | None, *, source: Any, revision: Any
) -> Path | None:
    """A download a local endpoint made of this same source and commit, still on disk."""
    if previous is None or previous.get("source") != source:
        return None
    root = previous.get("root")
    if previous.get("revision") != revision or not isinstance(root, str):
        return None
    return Path(root) if Path(root).is_dir() else None


# --- scan_model ------------------------------------------------------------------------


def _stall_message(report: scanners.ScanReport) -> str:
    blocking = report.blocking
    shown = "; ".join(
        f"{f.path}: {f.severity}: {f.reason}" for f in blocking[:_FINDINGS_IN_MESSAGE]
    )
    more = len(blocking) - _FINDINGS_IN_MESSAGE
    extra = f"; and {more} more" if more > 0 else ""
    return (
        f"ScanFailed: {len(blocking)} finding(s) of severity high or worse, so no deployment "
        f"may use this model: {shown}{extra}"
    )


async def _hash_and_scan(
    ctx: StepContext, services: ModelServices, *, root: Path, skip: bool
) -> scanners.ScanReport:
    """Hash every file under ``root`` and scan them (``skip``: hash only), both cached."""

    def work() -> scanners.ScanReport:
        cache = services.hash_cache()
        try:
            files = hashing.hash_files(root=root, cache=cache, workers=services.hash_workers)
            if skip:
                return scanners.skipped()
            return scanners.scan_files(root=root, files=files, cache=cache)
        finally:
            cache.close()

    report = await asyncio.to_thread(work)
    ctx.log.info(
        f"scanned {report.scanned_files} file(s), {report.cached_files} more known to the scan "
        f"cache: {report.result}"
    )
    return report


async def _scan_model(ctx: StepContext) -> outcomes.Outcome:
    services, source, name = _services(ctx), _source(ctx), _model_name(ctx)
    record = await asyncio.to_thread(records.read_record, cache_dir=services.cache_dir, model=name)
    if record is None or record.get("source") != _plain(source):
        return outcomes.Failed(f"{ctx.object_key}: add_model has not recorded this source yet")
    skip = ctx.inputs.get("security_scan") == "skip"
    if record.get("root") is None:
        report = scanners.skipped()
        note = "files not downloaded: scanned when a local endpoint downloads them"
        status = {"scan": {**report.as_status(), "note": note}}
        return outcomes.Done(outputs={"model_id": name, "findings": 0, "status": status})
    try:
        report = await _hash_and_scan(ctx, services, root=Path(str(record["root"])), skip=skip)
    except errors.ModelSourceError as exc:
        return _outcome_of(exc)
    await asyncio.to_thread(
        records.write_record,
        cache_dir=services.cache_dir,
        model=name,
        record={**record, "scan": report.as_status()},
    )
    if report.blocking:
        return outcomes.Stalled(
            _stall_message(report), outputs={"status": {"scan": report.as_status()}}
        )
    worst = max((scanners.SEVERITIES.index(f.severity) for f in report.findings), default=-1)
    return outcomes.Done(
        outputs={
            "model_id": name,
            "findings": len(report.findings),
            "max_severity": scanners.SEVERITIES[worst] if worst >= 0 else None,
            "status": {"scan": report.as_status()},
        }
    )


# --- hub files for a local endpoint ----------------------------------------------------


async def hub_files_for_endpoint(
    ctx: StepContext, *, model: str, source: Mapping[str, Any]
) -> Path | outcomes.Outcome:
    """The folder a local endpoint serves a hugging_face Model from, downloaded and scanned.

    The files a recorded download left are reused if still on disk; else the commit
    add_model resolved (the source's revision if none is recorded) is downloaded into the
    shared hub cache, as add_model does with ``download: true``, with the Model's
    credential as token. Every file is then hashed and scanned (both cached by hash, so a
    second deployment costs little), unless the Model's ``security_scan`` is ``skip``, and
    the Model's record is updated with the folder and the scan. Returns the folder, or the
    outcome that stops the deployment: Stalled ``ScanFailed`` with the findings when the
    scan blocks, Stalled or Retry for a source problem.
    """
    try:
        services = _services(ctx)
        record = await asyncio.to_thread(
            records.read_record, cache_dir=services.cache_dir, model=model
        )
        plain = _plain(source)
        same = record is not None and record.get("source") == plain
        kept = record if same else None
        revision = kept.get("revision") if kept is not None else None
        root = _kept_download(kept, source=plain, revision=revision)
        if root is None:
            token = credential_token(services, source)
            described = await _describe_hub(
                ctx,
                services,
                source=source,
                token=token,
                revision=revision if isinstance(revision, str) else None,
            )
            revision = described.commit_sha
            root = await _download_hub(ctx, services, described=described, token=token)
        else:
            ctx.log.info(f"Model/{model}: reusing the download at {root}")
        skip = kept is not None and kept.get("security_scan") == "skip"
        report = await _hash_and_scan(ctx, services, root=root, skip=skip)
    except outcomes.StepError as exc:
        return outcomes.outcome_from_exception(exc)
    except errors.ModelSourceError as exc:
        return _outcome_of(exc)
    updated = {
        **(kept or {}),
        "source": plain,
        "root": str(root),
        "revision": revision,
        "scan": report.as_status(),
    }
    await asyncio.to_thread(
        records.write_record, cache_dir=services.cache_dir, model=model, record=updated
    )
    if report.blocking:
        return outcomes.Stalled(
            _stall_message(report), outputs={"status": {"scan": report.as_status()}}
        )
    return root


# --- remove_model ----------------------------------------------------------------------


async def _remove_model(ctx: StepContext) -> outcomes.Outcome:
    """remove_model: forget the model; its download goes with it unless another Model
    records the same files.

    A url download is deleted; a Hugging Face commit is removed from the shared hub cache
    with the blobs no other cached commit uses (huggingface_hub's cache manager). Disk
    sources are never touched.
    """
    services, name = _services(ctx), _model_name(ctx)
    record = await asyncio.to_thread(records.read_record, cache_dir=services.cache_dir, model=name)
    await asyncio.to_thread(records.remove_record, cache_dir=services.cache_dir, model=name)
    root = record.get("root") if record else None
    if isinstance(root, str):
        others = await asyncio.to_thread(records.recorded_roots, cache_dir=services.cache_dir)
        if root not in others:  # no other Model's files: the download goes with it
            if Path(root).is_relative_to(services.cache_dir / "hf"):
                deleted = await asyncio.to_thread(
                    huggingface.delete_revision,
                    cache_dir=services.cache_dir / "hf",
                    snapshot=Path(root),
                )
            else:
                deleted = await asyncio.to_thread(
                    url.delete_download, dest_dir=services.cache_dir / "url", root=Path(root)
                )
            if deleted:
                ctx.log.info(f"deleted the download at {root}")
    return outcomes.Done(outputs={"model_id": name})


add_model = _outcome_on_step_error(_add_model)
scan_model = _outcome_on_step_error(_scan_model)
remove_model = _outcome_on_step_error(_remove_model)
