-- A bodiless POST to the URL's path (the hello-world's POST route).
wrk.method = "POST"
