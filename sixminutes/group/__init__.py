"""A group of instances on a NATS JetStream cluster (``serve --nats URL``): docs/scale-out.md.

The stream is the durable log: a POST is answered once JetStream has stored it. The
stream's partitions are dealt among the live instances; each owner counts its partitions
and writes their Stats to a key-value bucket; every instance merges the bucket into its
view and runs the rules on it. ``partitions`` and ``view`` do no I/O; ``owner`` and
``cluster`` talk to NATS (imported only with ``--nats``).
"""


class GroupUnavailable(Exception):
    """JetStream did not acknowledge in time: the POST is refused (503), and retried."""
