"""Bad input gives Python exceptions with clear messages, never a crash."""
import json

import numpy as np
import pytest

import shmbus
from conftest import pair


def test_wrong_types_raise_type_error(bus):
    d = bus.open()
    with pytest.raises(TypeError):
        d.publisher(42)
    with pytest.raises(TypeError):
        d.subscriber(b"bytes")
    pub = d.publisher("t")
    with pytest.raises(TypeError, match="size must be an int, not str"):
        pub.loan("10")
    with pytest.raises(TypeError, match="size must be an int, not float"):
        pub.loan(1.5)
    with pytest.raises(TypeError, match="takes a Message"):
        pub.publish(b"not a message")
    with pytest.raises(TypeError):
        pub.loan_frame("640", 480)
    sub = d.subscriber("t")
    with pytest.raises(TypeError, match="timeout"):
        sub.recv(timeout="soon")
    with pytest.raises(TypeError):
        shmbus.Domain(7)


def test_negative_and_impossible_sizes_raise_value_errors(bus):
    d = bus.open()
    pub = d.publisher("t")
    with pytest.raises(ValueError, match="size must be >= 0, got -1"):
        pub.loan(-1)
    with pytest.raises(shmbus.InvalidArgument, match="max_message_size") as e:
        pub.loan(1 << 40)
    assert e.value.code == "SHMBUS_ETOOBIG" and e.value.status < 0
    with pytest.raises(ValueError, match="width must be >= 0"):
        pub.loan_frame(-5, 10)
    with pytest.raises(ValueError, match="sizes must be 1..16384"):
        pub.loan_frame(0, 10)
    with pytest.raises(ValueError, match="pixel format 'bgr48'"):
        pub.loan_frame(8, 8, "bgr48")
    with pytest.raises(ValueError, match="stride"):
        pub.loan_frame(8, 8, "rgb24", stride=4)
    m = pub.loan(16)
    with pytest.raises(ValueError, match="over the loan"):
        pub.publish(m, 17)
    sub = d.subscriber("t")
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        sub.recv(timeout=-1)
    m.release()


def test_topic_names_over_the_limit_or_malformed_are_refused(bus):
    d = bus.open()
    for bad in ("x" * 64, "/abs", ".hidden", "sp ace", ""):
        with pytest.raises(shmbus.InvalidArgument, match="invalid topic name") as e:
            d.publisher(bad)
        assert e.value.code == "SHMBUS_EINVAL"
        with pytest.raises(shmbus.InvalidArgument, match="invalid topic name"):
            d.subscriber(bad)
    assert d.publisher("x" * 63).topic == "x" * 63  # the limit itself is fine


def test_config_with_errors_raises_config_error_with_file_path_and_reason(bus, tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"pools": [{"name": "p", "block_size": "1KiB", "count": 4}],
                               "topics": [{"name": "a", "pool": "p", "history": 2},
                                          {"name": "b", "pool": "big"}]}))
    with pytest.raises(shmbus.ConfigError) as e:
        shmbus.Domain(bus.name, config=str(cfg), runtime_dir=bus.runtime_dir)
    err = e.value
    assert err.code == "SHMBUS_ECONFIG"
    assert err.file == str(cfg) and err.path == "$.topics[1].pool"
    assert "big" in err.reason and str(cfg) in str(err)
    cfg.write_text('{"pools": [')
    with pytest.raises(shmbus.ConfigError, match="syntax") as e:
        shmbus.check_config(str(cfg))
    assert e.value.file == str(cfg) and e.value.path
    with pytest.raises(shmbus.Error) as e:
        shmbus.Domain(bus.name, config=str(tmp_path / "missing.json"))
    assert e.value.code == "SHMBUS_ENOENT"


def test_a_full_pool_raises_full_or_timeout_per_the_topics_policy(bus):
    d = bus.open()
    pub, wait_pub = d.publisher("tiny"), d.publisher("tiny-wait")
    held = [pub.loan(1000) for _ in range(4)]  # the "small" pool has 4 blocks
    with pytest.raises(shmbus.Full) as e:
        pub.loan(1000)
    assert e.value.code == "SHMBUS_EFULL"
    with pytest.raises(shmbus.Timeout):
        wait_pub.loan(1000)
    for m in held:
        m.release()
    wait_pub.loan(1000).release()


def test_misuse_of_messages_and_closed_objects_raises(bus):
    d = bus.open()
    pub, sub = pair(d, "t")
    other = d.publisher("u")
    m = pub.loan(8)
    with pytest.raises(ValueError, match="not a loan of this publisher"):
        other.publish(m)
    pub.publish(m)
    with pytest.raises(ValueError, match="released"):
        pub.publish(m)
    got = sub.recv(timeout=10)
    with pytest.raises(TypeError):
        memoryview(got)[0] = 1  # received: read-only
    got.release()
    pub.close()
    with pytest.raises(ValueError, match="publisher is closed"):
        pub.loan(8)
    d.close()
    with pytest.raises(ValueError, match="domain is closed"):
        d.publisher("v")
    with pytest.raises(ValueError, match="closed"):
        sub.recv(timeout=0)
