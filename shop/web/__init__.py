"""What the HTML pages and the JSON API share about HTTP: the client, sessions, rate limits,
strict forms and the code page. The use cases know none of it."""
