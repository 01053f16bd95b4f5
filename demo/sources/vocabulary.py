"""The fixed facts of the demo world of Calderbridge: its "today", its town, the names, streets
and teams it draws on, and the codes its records use. Everything is invented (see
:mod:`demo.sources.population`).
"""

from __future__ import annotations

from datetime import date

#: "Today" in the demo world, so that ages and dates never drift.
REFERENCE_DATE = date(2026, 11, 1)
TOWN = "Calderbridge"
REGISTER_PUBLISHED_ON = date(2026, 9, 1)

GIVEN_F = (
    "Amelia",
    "Olivia",
    "Isla",
    "Ava",
    "Freya",
    "Grace",
    "Rachel",
    "Sian",
    "Dawn",
    "Edna",
    "Priya",
    "Aisha",
    "Megan",
    "Chloe",
    "Ruth",
    "Joan",
    "Zara",
    "Lily",
    "Hannah",
    "Maya",
)
GIVEN_M = (
    "Noah",
    "Oliver",
    "Arthur",
    "Leo",
    "Kai",
    "Gareth",
    "Owen",
    "Rhys",
    "Tomasz",
    "Jamal",
    "Callum",
    "Harry",
    "Samuel",
    "Dev",
    "Frank",
    "Ibrahim",
    "Lewis",
    "Ethan",
    "Alfie",
    "Joe",
)
FAMILY = (
    "Hartley",
    "Bramwell",
    "Penrose",
    "Ashworth",
    "Lyle",
    "Morrow",
    "Fairclough",
    "Okafor",
    "Nowak",
    "Calder",
    "Pennington",
    "Whitlock",
    "Haldane",
    "Sutcliffe",
    "Greenhalgh",
    "Mistry",
    "Rahman",
    "Kowalski",
    "Thorne",
    "Birchall",
    "Appleyard",
    "Quayle",
    "Dunmore",
    "Ellwood",
    "Farrant",
    "Garside",
    "Holroyd",
    "Ingham",
    "Jowett",
    "Kershaw",
)
STREETS = (
    "Weaver Street",
    "Linden Close",
    "Canal Wharf",
    "Mill Lane",
    "Foundry Road",
    "Tenter Croft",
    "Dyehouse Lane",
    "Spinners Way",
    "Calder Terrace",
    "Bobbin Row",
    "Fulling Mill Road",
    "Heddle Street",
    "Warp Close",
    "Loom Avenue",
    "Shuttle Gardens",
)
TEAMS = (
    ("North Locality Safeguarding Team", "01632 960101", "north.safeguarding@calderbridge.example"),
    ("South Locality Safeguarding Team", "01632 960102", "south.safeguarding@calderbridge.example"),
    ("Children in Care Team", "01632 960103", "children.in.care@calderbridge.example"),
)
CP_CATEGORIES = ("neglect", "physical-abuse", "emotional-abuse", "sexual-abuse", "multiple")
LA_STATUSES = ("C2", "V2", "J2", "E1")  # care order, s20 accommodation, PACE, placement order
ED_REASONS = (
    "Fall",
    "Head injury",
    "Fracture of wrist",
    "Asthma attack",
    "Burn",
    "Abdominal pain",
    "Laceration",
    "Fever",
)
ED_DESTINATIONS = ("Discharged home", "Admitted to ward", "Referred to GP", "Left before seen")
DISCHARGE_DESTINATIONS = (
    "usual place of residence",
    "care home",
    "intermediate care bed",
    "home with reablement package",
)
DIAGNOSES = (
    ("S72.0", "Fracture of neck of femur"),
    ("J18.9", "Pneumonia, unspecified"),
    ("I63.9", "Cerebral infarction"),
    ("N39.0", "Urinary tract infection"),
)
MOBILITY = ("independent", "walking frame, assistance of one", "hoist, assistance of two")
POLICE_CATEGORIES = ("domestic-abuse", "missing-person", "child-welfare", "antisocial-behaviour")

SUPPLIERS = (
    "Calder Valley Roofing Ltd",
    "Northgate Housing Association",
    "Brightlamp Street Lighting Ltd",
    "Pennine School Meals CIC",
    "Weaver IT Services Ltd",
    "Riverside Grounds Maintenance",
)
DEPARTMENTS = (
    ("Housing", "Temporary accommodation"),
    ("Highways", "Street lighting repairs"),
    ("Education", "School meals contract"),
    ("Corporate", "Software licences"),
    ("Parks", "Grounds maintenance"),
)
