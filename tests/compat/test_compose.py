"""The docker-compose deployment hangs together: three gateways on the shared configuration,
each with its own data volume, Redis with its append-only file on, and nginx and Prometheus
naming exactly the gateways that exist. (No Docker engine runs here; this checks the files.)"""

import re

import yaml

from conftest import ROOT


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def gateways(c):
    return sorted(name for name in c["services"] if name.startswith("modgate-"))


def test_three_gateways_share_one_configuration_and_keep_their_own_jobs():
    c = compose()
    names = gateways(c)
    assert names == ["modgate-1", "modgate-2", "modgate-3"]
    volumes = set()
    for name in names:
        service = c["services"][name]
        assert service["build"] == "."
        mounts = service["volumes"]
        assert "./deploy/modgate-shared.toml:/etc/modgate/modgate.toml:ro" in mounts
        data = [m for m in mounts if m.endswith(":/var/lib/modgate/data")]
        assert len(data) == 1
        volumes.add(data[0])
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert len(volumes) == 3, "each gateway has a data volume of its own"
    shared = (ROOT / "deploy" / "modgate-shared.toml").read_text()
    assert 'backend = "redis"' in shared
    assert 'redis_url = "redis://redis:6379/0"' in shared


def test_redis_keeps_an_append_only_file_and_never_evicts():
    command = compose()["services"]["redis"]["command"]
    args = dict(zip(command[1::2], command[2::2]))
    assert args["--appendonly"] == "yes"
    assert args["--appendfsync"] in ("everysec", "always")
    assert args["--maxmemory-policy"] == "noeviction"


def test_the_load_balancer_and_prometheus_name_every_gateway():
    c = compose()
    names = gateways(c)
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert sorted(re.findall(r"server (modgate-\d):8080;", nginx)) == names
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == [f"{n}:9090" for n in names]


def test_every_service_has_a_health_check_and_grafana_is_provisioned():
    c = compose()
    for name, service in c["services"].items():
        assert "healthcheck" in service, f"{name} has no health check"
    gateway = c["services"]["modgate-1"]["healthcheck"]["test"]
    assert gateway[1:3] == ["/usr/local/bin/modgate", "healthcheck"]
    # The console and admin API from the host: one gateway's admin listener, on loopback only.
    assert c["services"]["modgate-1"]["ports"] == ["127.0.0.1:9090:9090"]
    for name in ("modgate-2", "modgate-3"):
        assert "ports" not in c["services"][name]
    # Prometheus loads the alert rules its configuration names.
    prometheus = c["services"]["prometheus"]
    assert "./deploy/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    # Grafana: the data source and the dashboard, from files that exist, at the paths the
    # provisioning files name.
    grafana = c["services"]["grafana"]
    mounts = dict(m.rsplit(":", 1)[0].split(":", 1) for m in grafana["volumes"] if m.startswith("./"))
    for source in mounts:
        assert (ROOT / source).exists(), source
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert source["datasources"][0]["type"] == "prometheus"
    boards = yaml.safe_load((provisioning / "dashboards" / "modgate.yml").read_text())
    folder = boards["providers"][0]["options"]["path"]
    assert mounts["./deploy/grafana-dashboard.json"] == f"{folder}/modgate.json"
