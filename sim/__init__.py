"""Simulated calls for benchmarks and tests: corpus clips in a row or as two sides with echo, and
the non-speech a call carries (tones, DTMF, hold music). Research code, never part of the
package."""
