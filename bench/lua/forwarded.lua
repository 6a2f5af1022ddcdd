-- wrk -s bench/lua/forwarded.lua: a GET from a client that sends its own forwarding headers
wrk.headers["X-Forwarded-For"] = "203.0.113.7"
wrk.headers["X-Forwarded-Proto"] = "https"
