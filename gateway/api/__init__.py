"""HTTP endpoints: thin blueprints that parse, call the executor and render."""
