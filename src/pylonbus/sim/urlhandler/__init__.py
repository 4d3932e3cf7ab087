"""pyserial URL handlers of pylonbus: `sim://` runs the simulator inside the calling process."""
