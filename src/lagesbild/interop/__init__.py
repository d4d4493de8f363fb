"""Data in and out of Lägesbild: exports of the map's filter in the formats spreadsheets and GIS read, and
imports of old spreadsheets, walk findings and other systems' exports."""
