"""Decide: score a transaction with the model and turn the score into an action.

Import from the modules (``fraudops.decide.engine``, ``.policy``, ``.scorer``, ``.log``):
this package imports nothing itself, so readers of the decision log (the review desk,
``fraudops users``) do not pay for the model libraries the scorers load.
"""
