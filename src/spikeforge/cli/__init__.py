"""The ``spikeforge`` command line. Each sub-command lives in its own module exposing ``register(subparsers)``."""
