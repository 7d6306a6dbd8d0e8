"""Record and replay: recordings of real traffic make actions and plugins testable offline.

- :mod:`runtime.recording.capture`: what one attempt saw, sent and got back (zero cost for
  tenants that do not record);
- :mod:`runtime.recording.redact`: stable stand-ins for codes, numbers and secrets;
- :mod:`runtime.recording.format`: the JSON Lines format;
- :mod:`runtime.recording.recorder`: writing recordings (used by ``plugins.recorder``);
- :mod:`runtime.recording.replay`: replaying a recording against an action or a provider.

See docs/testing.md.
"""
