"""`export kubernetes --chaos`: every Chaos Mesh object validates against the CRDs' own schemas
(chaos_mesh_crds/, copied from ../shared with their README: storage version, descriptions removed),
as a Kubernetes API server validates a custom resource's body; and the backing faults map as the
README says."""

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft4Validator

from procrun.chaos.schedule import ChaosConfig
from procrun.export import ExportContext, TypeSpec
from procrun.export.chaos_mesh import notes
from procrun.export.kubernetes import render

CRDS = Path(__file__).with_name("chaos_mesh_crds")


def crd(kind):
    # OpenAPI v3.0 writes exclusiveMinimum as a boolean: draft 4's meaning
    return Draft4Validator(json.loads((CRDS / f"{kind}.v1alpha1.schema.json").read_text()))


def objects(backing=(), actions=("kill", "restart", "relocate", "pause"), backing_faults=()):
    ctx = ExportContext(app="shop", root="/srv/shop", types=(TypeSpec("web", "gunicorn app", 2, 5000),
                                                            TypeSpec("worker", "celery -A app worker", 1, 5100)),
                        env={}, image="shop:1", chaos=ChaosConfig(interval=30.0, actions=actions), backing=backing,
                        backing_faults=backing_faults)
    text = render(ctx)["shop-chaos-mesh.yaml"].content
    return ctx, text, list(yaml.safe_load_all(text))


BACKING = (("REDIS_URL", "app=redis,tier=cache"), ("DATABASE_URL", "db.internal"), ("QUEUE_URL", None))


@pytest.mark.parametrize("backing", [(), BACKING])
def test_every_exported_object_validates_against_its_crd(backing):
    _, _, docs = objects(backing)
    schedule = crd("Schedule")
    kinds = {"PodChaos": crd("PodChaos"), "NetworkChaos": crd("NetworkChaos")}
    for doc in docs:
        assert doc["apiVersion"] == "chaos-mesh.org/v1alpha1" and doc["kind"] == "Schedule"
        schedule.validate(doc)  # the whole body, spec and the embedded chaos included
        kind = doc["spec"]["type"]
        embedded = doc["spec"][kind[0].lower() + kind[1:]]
        kinds[kind].validate({"apiVersion": doc["apiVersion"], "kind": kind, "metadata": {"name": "x"},
                              "spec": embedded})
    # pod-kill, container-kill, pod-failure; per service: latency, bandwidth, outage, blackhole, timeout
    assert len(docs) == 3 + 5 * len(backing)


def test_a_wrong_object_is_refused_by_the_same_schemas():
    _, _, docs = objects(BACKING)
    broken = [d for d in docs if d["spec"]["type"] == "NetworkChaos"][0]
    broken["spec"]["networkChaos"]["direction"] = "sideways"
    assert list(crd("Schedule").iter_errors(broken))


def test_backing_faults_map_to_network_chaos_with_their_targets_and_notes():
    ctx, text, docs = objects(BACKING)
    net = {d["metadata"]["name"]: d["spec"] for d in docs if d["spec"]["type"] == "NetworkChaos"}
    latency = net["shop-redis_url-latency".replace("_", "-")]["networkChaos"]
    assert latency["action"] == "delay" and latency["delay"] == {"latency": "200ms", "jitter": "100ms"}
    assert latency["direction"] == "both" and latency["selector"] == {"labelSelectors": {"app.kubernetes.io/name": "shop"}}
    assert latency["target"] == {"mode": "all", "selector": {"labelSelectors": {"app": "redis", "tier": "cache"}}}
    assert net["shop-database-url-outage"]["networkChaos"]["action"] == "partition"
    assert net["shop-database-url-outage"]["networkChaos"]["externalTargets"] == ["db.internal"]
    blackhole = net["shop-queue-url-blackhole"]["networkChaos"]
    assert blackhole["loss"] == {"loss": "100"} and "target" not in blackhole and "externalTargets" not in blackhole
    assert blackhole["direction"] == "to"  # from and both need a target
    assert net["shop-queue-url-blackhole"]["schedule"] == "@every 810s"  # 30 s x 3 services x 9 kinds
    assert net["shop-redis-url-bandwidth"]["networkChaos"]["bandwidth"]["rate"] == "128kbps"  # 16 KB/s
    said = notes(ctx)
    for kind in ("reset", "slow_close", "slicer", "limit_data"):
        assert any(f"backing fault {kind} (" in line and "no NetworkChaos equivalent" in line for line in said)
    assert any("no target for QUEUE_URL" in line for line in said)
    assert all(f"# {line}" in text for line in said)  # the file says it too


def test_the_faults_procrun_yaml_chooses_are_exported_with_what_it_fixes_and_their_direction():
    ctx, _, docs = objects(BACKING[:1], backing_faults=("latency latency=300 jitter=30 direction=downstream seconds=7",
                                                        "bandwidth rate=2 direction=upstream", "slicer"))
    net = {d["metadata"]["name"]: d["spec"]["networkChaos"] for d in docs if d["spec"]["type"] == "NetworkChaos"}
    assert sorted(net) == ["shop-redis-url-bandwidth", "shop-redis-url-latency"]
    latency = net["shop-redis-url-latency"]
    assert latency["delay"] == {"latency": "300ms", "jitter": "30ms"} and latency["direction"] == "from"
    assert latency["duration"] == "7s"
    assert net["shop-redis-url-bandwidth"]["direction"] == "to" and net["shop-redis-url-bandwidth"]["bandwidth"]["rate"] == "16kbps"
    assert [line for line in notes(ctx) if "equivalent" in line] == [
        "procrun's backing fault slicer (writes cut into small pieces, each a little late: framing bugs show) has no "
        "NetworkChaos equivalent: not exported"]
    for doc in docs:
        crd("Schedule").validate(doc)


def test_without_backing_the_file_is_what_it_was():
    _, text, docs = objects(())
    assert not text.startswith("#") and [d["spec"]["type"] for d in docs] == ["PodChaos"] * 3
