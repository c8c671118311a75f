"""The deployment files, validated by the tools that read them (SPEC §1, §8, §10):

- docker-compose.yml against the Compose Specification's JSON schema (vendored by the pinned
  check-jsonschema package; ``docker compose config`` too where the Compose plugin exists);
- deploy/kubernetes/*.yaml against Kubernetes' own OpenAPI-derived schemas, strict (unknown fields
  are errors), from the pinned kubernetes-validate package, which vendors them per release;
- deploy/prometheus with promtool (Debian's prometheus package): rules, alert unit tests, configs;
- the Grafana dashboard's queries with promtool too, and every series they name is one we export;
- deploy/postgres/postgresql.conf with PostgreSQL's own parser (``postgres -C`` on a scratch
cluster). The nginx file is checked with ``nginx -t`` and served for real in
stateset/tests/system/test_nginx.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stateset.tests.system.servers import DEPLOY, ROOT, server_binaries, service_dir, service_user

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package prometheus; .ci/run installs it)")


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- docker compose ------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification():
    import jsonschema
    from check_jsonschema.builtin_schemas import vendor

    schema = json.loads((Path(vendor.__file__).parent / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_compose_wires_the_services_and_their_scrapes():
    services = compose()["services"]
    assert {"api", "worker", "beat", "postgres", "redis", "prometheus", "grafana",
            "migrate"} <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on a missing {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts a missing {source}"
    assert services["worker"]["environment"]["STATESET__CELERY__METRICS_PORT"] == "9100"
    assert services["worker"]["environment"]["DATABASE_URL"] == services["api"]["environment"][
        "DATABASE_URL"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-compose.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for group in job["static_configs"]
               for t in group["targets"]}
    assert targets == {"api:8000", "worker:9100"}
    for name in ("prometheus", "grafana"):  # operators only: bound to the host's loopback
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])


def test_docker_compose_config_accepts_the_file():
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True) \
        if shutil.which("docker") else None
    if probe is None or probe.returncode != 0:
        pytest.skip(
            "no Docker Compose plugin on this machine (the schema test above covers the file)")
    result = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config",
                             "--quiet"],
                            capture_output=True, text=True,
                            env={"SECRET_KEY": "x" * 50, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


# --- Kubernetes ----------------------------------------------------------------------------------


def manifests() -> list[dict]:
    return [doc for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
            for doc in load_all(path)]


def test_kubernetes_manifests_validate_strictly_against_the_schemas():
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    docs = manifests()
    assert {doc["kind"] for doc in docs} >= {"Deployment", "Service", "HorizontalPodAutoscaler",
                                             "Ingress", "NetworkPolicy", "PodDisruptionBudget"}
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at "
                                 f"{'/'.join(map(str, error.path))}") from None


def test_kubernetes_exposes_the_api_but_not_its_metrics_or_readiness_detail():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in manifests()}
    paths = [p["path"] for rule in docs[("Ingress", "stateset-api")]["spec"]["rules"]
             for p in rule["http"]["paths"]]
    kinds = {p["path"]: p["pathType"] for rule in docs[("Ingress", "stateset-api")]["spec"]["rules"]
             for p in rule["http"]["paths"]}
    for private in ("/metrics", "/metrics/json", "/health/ready"):
        routed = [p for p in paths if private == p
                  or (kinds[p] == "Prefix" and private.startswith(p.rstrip("/") + "/"))
                  or (kinds[p] == "Prefix" and p == "/")]
        assert not routed, f"{private} is routed by the Ingress via {routed}"
    assert docs[("Ingress", "stateset-api")]["spec"]["tls"], "the Ingress terminates TLS"
    assert docs[("Service", "stateset-api")]["spec"]["type"] == "ClusterIP"

    def pod(name: str) -> dict:
        return docs[("Deployment", name)]["spec"]["template"]

    api, worker = pod("stateset-api"), pod("stateset-worker")
    assert api["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    worker_env = {e["name"]: e.get("value") for e in worker["spec"]["containers"][0]["env"]}
    port = worker_env["STATESET__CELERY__METRICS_PORT"]
    assert worker["metadata"]["annotations"]["prometheus.io/port"] == port
    assert worker["spec"]["containers"][0]["ports"][0]["containerPort"] == int(port)
    policies = {d["spec"]["podSelector"]["matchLabels"]["app"]: d for (kind, _),
                d in docs.items() if kind == "NetworkPolicy"}
    worker_sources = policies["stateset-worker"]["spec"]["ingress"][0]["from"]
    assert [s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for s in worker_sources] == ["monitoring"]
    assert policies["stateset-worker"]["spec"]["ingress"][0]["ports"][0]["port"] == int(port)
    hpa = docs[("HorizontalPodAutoscaler", "stateset-api-hpa")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)  # the guide's


# --- Prometheus and Grafana ----------------------------------------------------------------------


def exported_series() -> set[str]:
    """What the app exports (stateset.metrics) as Prometheus names, plus Prometheus' own ``up``."""
    import prometheus_client

    from stateset import metrics

    names = {"up", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
             "machine_cpu_cores"}
    for value in vars(metrics).values():
        if isinstance(value, prometheus_client.Histogram):
            names |= {f"{value._name}_bucket", f"{value._name}_sum", f"{value._name}_count"}
        elif isinstance(value, prometheus_client.Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, prometheus_client.Gauge):
            names.add(value._name)
    return names


def series_in(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "",
                               without_strings)
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", without_groupings)  # matchers, ranges
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_labels))
    functions = {"sum", "rate", "max", "min", "histogram_quantile", "or", "and", "by", "le",
                 "count", "avg", "increase", "irate", "abs", "e9", "humanizePercentage"}
    return {w for w in words if w not in functions and not re.fullmatch(r"\d+|e\d+", w)}


def alert_rules() -> list[dict]:
    return [rule
            for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())[
                "groups"]
            for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "stateset-dashboard.json").read_text())


def test_alerts_cover_the_guides_thresholds_on_series_we_export():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    expected = {"StateSetSlowP95": "> 0.5", "StateSetHighErrorRate": "> 0.01",
                "StateSetCacheHitRateLow": "< 0.7",
                "StateSetHighCpu": "> 0.8", "StateSetHighMemory": "> 1e9",
                "StateSetDatabasePoolExhausted": "> 0.9"}
    for name, threshold in expected.items():
        assert threshold in rules[name]["expr"], name
    exported = exported_series()
    for rule in rules.values():
        assert series_in(rule["expr"]) <= exported, (rule["alert"],
                                                     series_in(rule["expr"]) - exported)


def test_dashboard_has_the_guides_panels_on_series_we_export():
    panels = dashboard()["panels"]
    titles = " | ".join(p["title"] for p in panels)
    for wanted in ("Request rate", "Error rate", "p50 / p95 / p99", "Database connections",
                   "Cache hit rate",
                   "CPU", "Memory", "Celery tasks", "Webhook deliveries", "Pool use"):
        assert wanted in titles, wanted
    exported = exported_series()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert series_in(target["expr"]) <= exported, (panel["title"],
                                                           series_in(target["expr"]) - exported)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))


@needs_promtool
def test_promtool_checks_the_rules_and_their_unit_tests():
    directory = DEPLOY / "prometheus"
    checked = subprocess.run([PROMTOOL, "check", "rules", "alerts.yml"], cwd=directory,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([PROMTOOL, "test", "rules", "alerts.test.yml"], cwd=directory,
                            capture_output=True, text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


@needs_promtool
def test_promtool_checks_the_scrape_configurations(tmp_path):
    directory = DEPLOY / "prometheus"
    result = subprocess.run([PROMTOOL, "check", "config", "prometheus-compose.yml"], cwd=directory,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run([PROMTOOL, "check", "config", "prometheus.yml"], cwd=directory,
                            capture_output=True, text=True)
    if (result.returncode != 0
        and "field kubernetes_sd_configs not found" in result.stdout + result.stderr):
        # Debian builds Prometheus without Kubernetes discovery: check everything else with the
        # discovery block swapped for a static one (relabelling rules, rule files, intervals).
        config = yaml.safe_load((directory / "prometheus.yml").read_text())
        for job in config["scrape_configs"]:
            assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
            job["static_configs"] = [{"targets": ["10.0.0.1:8000"]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(directory / "alerts.yml", tmp_path / "alerts.yml")
        result = subprocess.run([PROMTOOL, "check", "config", "prometheus.yml"], cwd=tmp_path,
                                capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path):
    """Each panel query as a recording rule: ``promtool check rules`` parses its PromQL."""
    rules = [{"record": f"stateset:panel_{p['id']}_{t['refId'].lower()}", "expr": t["expr"]}
             for p in dashboard()["panels"] for t in p["targets"]]
    (tmp_path / "panels.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "panels.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_the_guides_postgresql_settings_parse_with_postgresql(tmp_path):
    conf = DEPLOY / "postgres" / "postgresql.conf"
    wanted = {"shared_buffers": "262144", "effective_cache_size": "786432", "work_mem": "16384",
              "maintenance_work_mem": "524288", "max_connections": "100",
              "checkpoint_completion_target": "0.9",
              "checkpoint_timeout": "900", "random_page_cost": "1.1",
              "effective_io_concurrency": "200",
              "max_parallel_workers_per_gather": "4", "max_parallel_workers": "8",
              "wal_buffers": "2048"}
    text = conf.read_text()
    assert "(cores × 2) + effective spindles" in text, (
        "the pool-size rule is written next to max_connections")
    bin_dir = next(
        (server_binaries(major)[0] for major in (18, 17, 16, 15) if server_binaries(major)[0]),
        None)
    if bin_dir is None or not (bin_dir / "initdb").exists():
        pytest.skip("no PostgreSQL server binaries (initdb, postgres) on this machine")
    if service_user() is None and __import__("os").geteuid() == 0:
        pytest.skip("running as root with no 'postgres' account to run initdb as")
    scratch = service_dir("stateset-pgconf-")
    try:
        user = service_user()
        run_as = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
        copy = scratch / "postgresql.conf"
        shutil.copy(conf, copy)
        if user:
            __import__("os").chown(copy, *user)
        init = subprocess.run([bin_dir / "initdb", "-D", str(scratch / "data"), "-A", "trust", "-U",
                               "postgres", "--no-sync"], capture_output=True, text=True, **run_as)
        assert init.returncode == 0, init.stderr
        found = {}
        for name in wanted:
            result = subprocess.run([bin_dir / "postgres", "-D", str(scratch / "data"), "-c",
                                     f"config_file={copy}",
                                     "-C", name], capture_output=True, text=True, **run_as)
            assert result.returncode == 0, result.stderr
            found[name] = result.stdout.strip()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # in the server's units: 8 kB pages for buffers, kB for memory, s for time
    assert found == wanted
