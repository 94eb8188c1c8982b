"""The closed loop: detectors that watch the night and the policy that acts on them.

- :mod:`.arousal`: the streaming cortical-arousal detector and the wake signs;
- :mod:`.nightmare`: the streaming nightmare detector (REM, heart rate, EMG, eye movements);
- :mod:`.policy`: the intervention policy (when and how strongly to cue);
- :mod:`.profile`: what is learned about the person across nights (baselines, cue responses);
- :mod:`.stream`: the streaming helpers the detectors share (the stream contract and stage input,
  batching, framing, the chin-EMG RMS).
"""
