-- migrate: contract v1 -> v2 (not yet written: the next commit)
return redis.error_reply('ERR migrate: not implemented yet')
