"""Puente's pure core: the questionnaire and eligibility rules as data, and the engine that walks them.

Nothing in this package talks to Telegram, a database, the clock or the network: state and input go in,
new state and events come out. ``tests/test_purity.py`` keeps it that way.
"""
