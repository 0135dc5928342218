"""Personal insights: a member's listening, any period, from the events store alone."""
