"""The Counter of App Engine's deferred samples, without a Datastore.

The guide's `class Counter(ndb.Model)` read-modify-writes an entity
(`get_or_insert`, `count += amount`, `put()`); here the count is a Redis
integer changed with INCRBY, which is atomic, so concurrent tasks never
lose an update (the guide's version can). Debian's python3-redis.
COUNTER_REDIS_URL names the Redis (default redis://127.0.0.1:6379/0).
"""
import os

import redis

_redis = redis.Redis.from_url(
    os.environ.get("COUNTER_REDIS_URL", "redis://127.0.0.1:6379/0"))


class Counter(object):
    def __init__(self, key, count):
        self.key = key
        self.count = count

    @classmethod
    def get_or_insert(cls, key, count=0):
        value = _redis.get("counter:" + key)
        return cls(key, int(value) if value is not None else count)

    @classmethod
    def increment(cls, key, amount):
        return _redis.incrby("counter:" + key, amount)
