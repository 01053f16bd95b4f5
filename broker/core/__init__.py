"""Pure core: values in, values out. Nothing here does I/O."""
