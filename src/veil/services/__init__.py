"""Programs that serve the network over the library; the library never imports them."""
