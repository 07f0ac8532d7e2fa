"""Client dialects: each folder turns one client API into the gateway's
normalised Responses request and renders the answer back in that API's shape."""
