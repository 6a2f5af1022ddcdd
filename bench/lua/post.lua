-- wrk -s bench/lua/post.lua: a form post, 100-byte body, head and body in one send
wrk.method = "POST"
wrk.body = "a=" .. string.rep("x", 98)
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
