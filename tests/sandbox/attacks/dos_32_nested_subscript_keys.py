# attack: subscripts nested in each other's keys, 28 deep (near the nesting limit), and += with them: the inlined subscript check must not copy a key at every level (the tree would double per level at compile time)
# expect: ok
def on_execute_send_phone_message(event, api):
    a = [0, 0]
    x = a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    x += a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[a[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    return {"x": x}
