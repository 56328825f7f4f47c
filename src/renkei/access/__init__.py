"""THE access decision point: can(actor, action, patient, category) -> Decision."""
