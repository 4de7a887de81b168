"""The guidance engine: pure logic, text and call state in, typed events out."""
