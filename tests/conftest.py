"""Shared fixtures. This folder is on sys.path (pytest's rootdir conftest), so test modules
import the helpers ``recording`` and ``jackd`` directly."""
