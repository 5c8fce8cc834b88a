"""Pure functions over trace tables: tables in, tables or arrays out (no hooks, no Streamlit)."""
