"""What an institution installs: tasks, local data loading, the Flower ClientApp, `fl-client`."""
