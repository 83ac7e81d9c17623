"""Raw inputs: the data contract, ingest into a monthly panel, and the simulator."""
