"""Push: the websockets gateway that fans alerts and live events out to people and modules."""
