"""docs/troubleshooting.md: every condition reason a status can give, what it means and
what to do, from one catalogue.

A reason is the CamelCase word in a condition's ``reason`` (``reconciler status
KIND/NAME`` prints it; so do the status files); a stalled step's error starts with it
(``SecretNotFound: ...``). A test scans the package for the reasons it can emit and fails
when one is missing here, so a new reason cannot ship without its page entry.
"""

from __future__ import annotations

import dataclasses

REGENERATE = "python -m reconciler.docs_gen"


@dataclasses.dataclass(frozen=True)
class Reason:
    name: str
    phase: str
    """The phase it comes with (``Stalled``: a person must act)."""
    seen_on: str
    meaning: str
    action: str


SYNC = (
    '`curl -X POST -H "Authorization: Bearer $RECONCILER_TOKEN" -d '
    '\'{"kind": "KIND", "name": "NAME"}\' http://127.0.0.1:8080/api/v1/sync` '
    "(operator role)"
)

CATALOGUE: tuple[Reason, ...] = (
    # --- the watched branch (status/source.yaml) -------------------------------------
    Reason(
        "Applied",
        "Ready",
        "status/source.yaml",
        "The newest fetched revision validated and its plan was applied.",
        "Nothing to do.",
    ),
    Reason(
        "Progressing",
        "Reconciling",
        "status/source.yaml, every object",
        "A revision is being applied (source), or the object's chain is queued or running "
        "(object; the message names the running step).",
        "Wait. `reconciler status KIND/NAME` shows the steps; `--wait` follows it to Ready. "
        "A step that keeps retrying logs each attempt (`journalctl -u reconciler`).",
    ),
    Reason(
        "ValidationFailed",
        "Stalled",
        "status/source.yaml",
        "The newest revision of the watched branch does not validate; nothing of it is "
        "applied and every object keeps running as last applied. The problems are listed "
        "under `diagnostics` in status/source.yaml.",
        "Run `reconciler validate` on a clone at that revision, fix the specs and push. "
        "Let CI run `reconciler validate` on every pull request (`reconciler init` sets it "
        "up) so an invalid revision never reaches the branch.",
    ),
    Reason(
        "SourceUnavailable",
        "Stalled",
        "status/source.yaml",
        "The remote cannot be fetched (the message says why: not found, refused "
        "credentials, network). Objects keep running as last applied; the fetch is retried "
        "with backoff, doubling per failure up to 16 poll intervals or 5 minutes.",
        "Check `repo.url` and `repo.branch` in the config (`reconciler check-config`), and "
        "that the daemon's user can run `git ls-remote URL` (ssh keys, https token). The "
        "daemon recovers by itself at the next successful fetch.",
    ),
    # --- normal life of an object -----------------------------------------------------
    Reason(
        "Succeeded",
        "Ready",
        "every object",
        "The object's last chain succeeded at the observed revision.",
        "Nothing to do.",
    ),
    Reason(
        "UpToDate",
        "Ready",
        "every object",
        "The object was applied earlier and nothing about it changed since.",
        "Nothing to do.",
    ),
    Reason(
        "Pending",
        "Pending",
        "every object",
        "The object waits for its turn (its chain is not queued yet; the message says "
        "what it waits for, such as the object it depends on).",
        "Wait, or look at the object it names.",
    ),
    Reason(
        "Idle",
        "any",
        "the Reconciling condition",
        "The Reconciling condition is False: no chain of the object is queued or running.",
        "Nothing to do.",
    ),
    Reason(
        "None",
        "any",
        "the Stalled condition",
        "The Stalled condition is False: nothing needs a person.",
        "Nothing to do.",
    ),
    Reason(
        "Suspended",
        "Pending",
        "every object",
        "`spec.suspend: true`: the daemon leaves the object as it is, running or not.",
        "Remove `suspend` (or set it false) and push to hand it back to the daemon.",
    ),
    Reason(
        "Superseded",
        "Pending",
        "every object",
        "A newer revision replaced the chain before it finished; the newer one runs instead.",
        "Nothing to do; the next status shows the newer chain.",
    ),
    Reason(
        "Cancelled",
        "Pending",
        "every object",
        "The chain was cancelled (through the API) at a step boundary; its undo ran.",
        f"Push a change, or rerun it: {SYNC}.",
    ),
    Reason(
        "NoChainYet",
        "Pending",
        "objects using a step type this build cannot run (`k8s_job` today)",
        "The object validates and is planned, but this daemon has no implementation of a "
        "step type it needs; nothing was done on any cluster.",
        "Use step types `reconciler steps` lists as implemented, or a newer reconciler.",
    ),
    Reason(
        "Drifted",
        "any",
        "the Drifted condition (Deployments on kubernetes clusters)",
        "The object's live state was changed out of band; the message names the fields and "
        "the managers that changed them. It is re-applied unless self-heal is off for it.",
        "Change it in Git, not on the cluster. If the change was wanted, commit it to the spec.",
    ),
    Reason(
        "InSync",
        "any",
        "the Drifted condition",
        "The live state matches the spec again after a drift.",
        "Nothing to do.",
    ),
    # --- a chain that stopped ----------------------------------------------------------
    Reason(
        "StepFailed",
        "Stalled",
        "every object",
        "A step failed on every attempt its node allows (`retries`, `retry_delay` doubling "
        "up to `executor.step_retry_cap`). The chain is not run again until its spec or an "
        "object it refers to changes.",
        "`reconciler status KIND/NAME` shows the failed step, its attempts and its error; "
        f"fix the cause and push, or rerun after fixing something outside Git: {SYNC}.",
    ),
    Reason(
        "StepStalled",
        "Stalled",
        "every object",
        "A step found something only a person can fix and said so without a reason word "
        "(for example a Deployment that names no template); the message is the step's own.",
        "Read the message (`reconciler status KIND/NAME`), fix the spec and push.",
    ),
    Reason(
        "PruneSkipped",
        "Stalled",
        "objects removed from Git",
        "The object left Git but was not deleted: it carries `reconciler/prune: disabled`, "
        "or other objects still refer to it (the message says which).",
        "Remove the references first (a Model after its Deployments), or delete it by hand "
        "if the annotation is there on purpose; then its status file goes.",
    ),
    Reason(
        "InvalidSchedule",
        "Stalled",
        "Workflows with `config.schedule`",
        "The workflow's schedule cannot be evaluated (the message quotes the problem, e.g. "
        "an unknown `timezone` on the daemon's host).",
        "Fix `spec.config.schedule` (`cron`, `timezone`) and push; `reconciler validate` "
        "checks the cron expression's form.",
    ),
    # --- secrets -----------------------------------------------------------------------
    Reason(
        "SecretNotFound",
        "Stalled",
        "Credentials, Clusters (kubeconfig), Models (source credential), Deployments",
        "A secret the spec names is on none of the daemon host's sources: "
        "`$CREDENTIALS_DIRECTORY/<name>` (systemd LoadCredential=), `secrets_dir/<name>`, "
        "`RECONCILER_SECRET_<NAME>`. The message lists where it looked.",
        "Put the value on the daemon's host, e.g. `install -m 0600 /dev/stdin "
        "/etc/reconciler/secrets/<name>` (the folder is watched: the object recovers at "
        "once). `reconciler validate --host-checks --secrets-dir DIR` finds these before a "
        "push.",
    ),
    Reason(
        "SecretUnreadable",
        "Stalled",
        "Credentials, Deployments",
        "The secret exists but the daemon cannot read it (permissions, a folder, bad encoding).",
        "Make it a regular file the daemon's user can read (mode 0600, owner `reconciler` "
        "under systemd).",
    ),
    # --- models ------------------------------------------------------------------------
    Reason(
        "WaitingForModel",
        "Pending",
        "Deployments",
        "The Deployment's Model is not Ready at its current spec yet (being downloaded, "
        "hashed or scanned), or it is Stalled; the message says which. The Deployment is "
        "parked: nothing runs and nothing retries until the Model's status moves, and "
        "then it goes on by itself.",
        "Look at the Model (`reconciler status Model/NAME`, `reconciler explain "
        "Deployment/NAME`) and fix what it says.",
    ),
    Reason(
        "WaitingForCluster",
        "Pending",
        "Deployments",
        "The Deployment's Cluster has not been checked at its current spec, or its check "
        "failed (unreachable, refused credentials). Parked until the Cluster's status moves.",
        "Look at the Cluster: `reconciler status Cluster/NAME`.",
    ),
    Reason(
        "WaitingForDeploymentTemplate",
        "Pending",
        "Deployments",
        "The Deployment's repo template has not been recorded at its current spec yet. "
        "Parked until it is; this lasts a moment.",
        "Nothing, unless it lasts: then look at the DeploymentTemplate's status.",
    ),
    Reason(
        "WaitingForCredential",
        "Pending",
        "Deployments, Models",
        "The Credential this object uses has not been checked at its current spec yet. "
        "Parked until it is (a failed check does not hold it: its own step reports that).",
        "Nothing, unless it lasts: then look at the Credential's status.",
    ),
    Reason(
        "WaitingForProject",
        "Pending",
        "Deployments",
        "The Deployment's Project has not been recorded at its current spec yet.",
        "Nothing, unless it lasts: then look at the Project's status.",
    ),
    Reason(
        "WaitingForDeployment",
        "Reconciling, Deleting",
        "Workflows (a wait_ready step), Models and other objects being deleted",
        "A Workflow run's wait_ready step waits for a Deployment to be Ready (it sleeps "
        "until that Deployment's status moves; no polling). Or an object removed from Git "
        "waits for the Deployments that use it to be deleted first.",
        "Look at the Deployment named in the message.",
    ),
    Reason(
        "ScanFailed",
        "Stalled",
        "Models, and Deployments of them",
        "The security scan found findings of severity high or worse in the model's files, "
        "so no deployment may use it (`security_scan: required`). The message and the "
        "Model's `scan.findings` name each file, severity and reason.",
        "Use a model without the findings (safetensors instead of pickle files). Only for "
        "a model you trust: `security_scan: skip` on the Model, reviewed in the pull request.",
    ),
    Reason(
        "GatedRepo",
        "Stalled",
        "Models from Hugging Face",
        "The repo is gated and the token's user has not accepted its conditions.",
        "Accept them on the model's page with the account of the Credential's token.",
    ),
    Reason(
        "Unauthorized",
        "Stalled",
        "Models from Hugging Face or a URL",
        "The source refused the request: no token, or one without access.",
        "Give the Model `source.credential` naming a Credential whose secret holds a token "
        "with access; check the secret's value.",
    ),
    Reason(
        "SourceNotFound",
        "Stalled",
        "Models",
        "The repo, revision, URL or path in `spec.source` does not exist.",
        "Fix `spec.source` (`uri`, `revision`) and push.",
    ),
    Reason(
        "ChecksumMismatch",
        "Stalled",
        "Models from a URL",
        "The downloaded bytes do not have the sha256 the spec pins; nothing was kept.",
        "Check the URL and the pinned `sha256`: the file changed at the source, or the "
        "pin is wrong.",
    ),
    Reason(
        "TruncatedDownload",
        "Stalled",
        "Models from a URL",
        "The server kept closing the transfer early, even after resuming.",
        f"Check the source server; rerun with {SYNC}.",
    ),
    Reason(
        "DownloadTooLarge",
        "Stalled",
        "Models from a URL",
        "The file is larger than the download size limit.",
        "Use a smaller file, or serve the model from disk (`provider_type: disk`).",
    ),
    Reason(
        "UnsafeArchive",
        "Stalled",
        "Models from a URL (archives)",
        "An archive member would land outside its folder (`..`, an absolute path, a link); "
        "nothing of it was unpacked.",
        "Do not use the archive; repack it with plain relative paths.",
    ),
    Reason(
        "DiskSourceUnreadable",
        "Stalled",
        "Models from disk",
        "The disk path is missing, unreadable, or not a file or folder on the daemon's host.",
        "Put the files at `spec.source.uri` on the daemon's host (readable by its user), "
        "or fix the path; `reconciler validate --host-checks` warns about missing paths.",
    ),
    Reason(
        "DownloadFailed",
        "Stalled",
        "Models from Hugging Face or a URL",
        "A download did not produce the expected bytes; nothing of it was kept.",
        f"Read the message for the cause, fix it, then rerun: {SYNC}.",
    ),
    Reason(
        "InvalidModelUri",
        "Stalled",
        "cloud Models",
        "The model URI does not have its provider's form.",
        "Fix `spec.source.uri` (`reconciler validate` reports the expected form).",
    ),
    Reason(
        "UnknownProviderType",
        "Stalled",
        "Models",
        "`spec.source.provider_type` names a source this daemon cannot read.",
        "Use `hugging_face`, `url`, `disk` or `cloud_model`.",
    ),
    Reason(
        "ModelCacheMissing",
        "Stalled",
        "Models",
        "This daemon was started without a model cache for its steps (a wiring problem, "
        "not a spec problem).",
        "Restart the daemon with `reconciler run`; report it if it stays.",
    ),
    # --- endpoints ----------------------------------------------------------------------
    Reason(
        "RolloutFailed",
        "Stalled",
        "Deployments",
        "The new workers did not become ready and the rollout gave up (the message says "
        "why: a crash loop, an image that cannot be pulled, a server that exits). With "
        "`strategy: green` the old workers keep serving.",
        "Local cluster: read the server's log in `state_dir/local/logs/`; kubernetes: "
        "`kubectl describe` the resources in the Deployment's status. Fix and push.",
    ),
)


def render() -> str:
    by_phase: dict[str, list[Reason]] = {}
    for reason in CATALOGUE:
        by_phase.setdefault(reason.phase, []).append(reason)
    lines = [
        "# Troubleshooting by condition reason",
        "",
        f"<!-- Generated by `{REGENERATE}` from reconciler/docs_gen/troubleshooting.py; do "
        "not edit by hand. -->",
        "",
        "Every status (`reconciler status KIND/NAME`, the files on the `reconciler/status` "
        "branch, `GET /api/v1/objects/{kind}/{name}`) carries conditions with a `reason`. "
        "`Stalled` means a person must act: the daemon will not retry until something "
        "changes. A stalled step's error starts with the same reason word. Look up the "
        "reason here.",
        "",
        "First steps for any object:",
        "",
        "```",
        "reconciler status KIND/NAME          # phase, conditions, the last execution's steps",
        "reconciler validate .                # in a clone of the state repo",
        "journalctl -u reconciler -n 200      # the daemon's log (or ./run.sh's terminal)",
        "```",
        "",
        "| reason | phase | seen on |",
        "|---|---|---|",
    ]
    for reason in CATALOGUE:
        lines.append(f"| [{reason.name}](#{reason.name.lower()}) | {reason.phase} | "
                     f"{reason.seen_on} |")  # fmt: skip
    lines.append("")
    for reason in CATALOGUE:
        lines += [
            f"## {reason.name}",
            "",
            f"Phase {reason.phase}; seen on {reason.seen_on}.",
            "",
            reason.meaning,
            "",
            f"**What to do:** {reason.action}",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def pages() -> dict[str, str]:
    return {"docs/troubleshooting.md": render()}
