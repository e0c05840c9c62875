"""Governance: who may do what (users, tokens, roles), approvals with separation of duties,
and the tamper-evident audit log."""
