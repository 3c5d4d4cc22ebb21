"""EPCIS 2.0: the event hash ID and the GS1 identifier forms it normalises."""
