"""Render an honestly labelled instrument corpus from General MIDI sound sources.

Modules, one per stage:

- ``audio``: clip constants (sample rate, clip length) and small signal helpers.
- ``material``: what the instruments play (music21 excerpts, generated phrases, drum
  grooves), as note lists in seconds.
- ``sources``: the sound sources (fluidsynth soundfonts, timidity + freepats, our own
  synthesiser) and which labels/programs each one honestly covers.
- ``synth``: the project's own synthesiser (the ``synth`` source).
- ``effects``: production: per-stem effects and stereo fold-down (pedalboard), then the
  mix's EQ, simulated room (pyroomacoustics), bus compression, limiter, noise, codecs.
- ``clips``: planning clip specs and rendering one clip (stems, levels, label rule).
"""
