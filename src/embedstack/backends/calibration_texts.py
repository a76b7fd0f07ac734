"""Texts for calibrating int8 quantization when the caller gives none: short queries, sentences and paragraphs.

They are our own, written for this purpose: mostly English (like the models most users quantize), with a few other
languages, numbers and code, so that every channel a backbone uses is seen active at least once. SmoothQuant only
needs the range of each channel, which depends on the model far more than on the text: on all-MiniLM-L6-v2 this
set keeps the lowest cosine to fp32 at 0.9925 to 0.9983 on the benchmark corpora, and 300 STS-B dev sentences and
Wikipedia extracts, or 64 strings of random vocabulary words, did as well (benchmarks/RESULTS.md).
Pass ``calibration_texts`` with texts of your domain or language to do better.
"""

from __future__ import annotations

CALIBRATION_TEXTS: tuple[str, ...] = (
    "How do I reset my password?",
    "cheap flights to lisbon",
    "The cat sat quietly on the windowsill, watching the rain.",
    "What is the capital of Australia?",
    "A man is playing a guitar on stage.",
    "Two dogs are running through a field of tall grass.",
    "best running shoes 2024",
    "The committee approved the budget after a long debate about funding for public schools and road repairs.",
    (
        "Plants turn light into chemical energy. In their leaves, water and carbon dioxide become sugar, and "
        "the oxygen left over goes back into the air, which is why forests matter so much to the atmosphere."
    ),
    "I don't think that's a good idea.",
    "Thanks, that worked!",
    (
        "The stock market fell sharply on Monday as investors worried about rising interest rates and slowing"
        " growth in China."
    ),
    (
        "The expedition left base camp before dawn. By noon the wind had picked up, the guides decided to "
        "turn back at the second camp, and the climbers spent the night in tents at 7,000 metres waiting for "
        "better weather."
    ),
    "symptoms of vitamin D deficiency",
    "She smiled.",
    "The new phone has a larger screen, a faster processor and a battery that lasts two days.",
    "A woman is slicing an onion in the kitchen.",
    "Why is the sky blue during the day and red at sunset?",
    (
        "Our library reads a folder of model files, loads the weights, and turns each text into a vector of "
        "384 numbers. Texts with similar meanings get vectors that point in similar directions, so search "
        "becomes a nearest-neighbour lookup."
    ),
    "Please send me the report by Friday.",
    "The quick brown fox jumps over the lazy dog.",
    "Children are playing soccer in the park while their parents watch from the benches.",
    "In 1969, Apollo 11 landed on the Moon, and Neil Armstrong became the first person to walk on its surface.",
    "Is it safe to eat raw cookie dough?",
    "The restaurant was crowded, the service was slow, and the food arrived cold.",
    "A train is moving along the tracks near a river.",
    (
        "The river floods every spring. Farmers along its banks plant rice after the water goes down, and the"
        " town holds a market each Saturday where families sell fish, vegetables and baskets woven from "
        "reeds."
    ),
    "No.",
    "Where can I buy a used bicycle near me?",
    "The meeting has been moved to 3 pm tomorrow in room 204.",
    "Scientists have discovered a new species of frog in the mountains of Ecuador.",
    "Water boils at 100 degrees Celsius at sea level.",
    (
        "She practised the piano for three hours a day as a child. Years later, when she played her first "
        "concert in a large hall, she said the hardest part was not the music but walking out onto the empty "
        "stage."
    ),
    "how to cook rice in a pan",
    "The government announced new measures to reduce air pollution in large cities.",
    "A group of people are dancing at a wedding.",
    "I would like to cancel my subscription and get a refund for the last month.",
    "The bridge was closed for repairs after engineers found cracks in its supports.",
    "Der Zug nach Berlin hat heute zwanzig Minuten Verspätung.",
    "¿Dónde está la estación de autobuses más cercana?",
    "La réunion est reportée à jeudi prochain à dix heures.",
    "Il museo è chiuso il lunedì.",
    "Москва является столицей России.",
    "東京は日本の首都です。",
    "我们明天去公园散步。",
    "The invoice #4471 totals $1,250.00, due 2024-03-31.",
    "def add(a, b): return a + b",
    "ERROR: connection refused (port 5432)",
)
