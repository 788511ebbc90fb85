"""What the coordinator runs: the Flower ServerApp and strategies, the API, the database."""
