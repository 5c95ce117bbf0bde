"""The shipped models, installed as package data of ``jam.models`` (see README.md here)."""
