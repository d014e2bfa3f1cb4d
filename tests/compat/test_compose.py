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
