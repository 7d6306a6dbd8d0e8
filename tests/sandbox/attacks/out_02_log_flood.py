# attack: api.log flood: 100000 lines across all levels (the sandbox keeps 200 and counts the rest)
# expect: ok
def on_execute_send_phone_message(event, api):
    for i in range(100000):
        api.log.info('line ' + str(i))
        api.log.error('error ' + str(i))
    return 'flooded'
