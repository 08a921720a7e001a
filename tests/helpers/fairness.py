"""Does the length filter treat scripts without spaces like English? A check on real-like captions.

`CAPTIONS` holds 30 Wikipedia-style image captions, written for this project, each in English,
Japanese, Chinese and Thai (the same 30 pictures described in each language). The length
filter keeps captions of 3 to 20 unigrams; counting unigrams by ICU word segmentation should
keep about as many Japanese, Chinese and Thai captions as English ones, where splitting on
spaces keeps almost none (one "word" per phrase).

    python -m benchmarks.filter_fairness   # prints retention per language, ICU vs spaces
"""

from __future__ import annotations

from collections.abc import Callable

from mling.filtering.reasons import TextFilterConfig
from mling.filtering.segment import space_unigrams, unigrams

CAPTIONS: dict[str, list[str]] = {
    "en": [
        "Tokyo Tower at night, seen from Shiba Park",
        "The main hall of Kiyomizu-dera in autumn",
        "Mount Fuji reflected in Lake Kawaguchi at sunrise",
        "A Shinkansen train passing through Odawara Station",
        "The Great Wall of China near Mutianyu in winter",
        "Visitors in front of the Forbidden City's Meridian Gate",
        "The Bund skyline in Shanghai after sunset",
        "A giant panda eating bamboo at the Chengdu research base",
        "Wat Arun on the Chao Phraya River in Bangkok",
        "Floating market vendors selling fruit from their boats",
        "The Grand Palace in Bangkok during a royal ceremony",
        "Elephants bathing in a river in Chiang Mai Province",
        "Portrait of the composer in 1905",
        "Interior of the cathedral, looking towards the altar",
        "Map of the railway network in 1930",
        "The stadium during the opening ceremony of the 1964 Olympic Games",
        "Cherry blossoms along the Meguro River in Tokyo",
        "A traditional tea ceremony in a Kyoto teahouse",
        "The old town of Lijiang with its tiled roofs",
        "Terraced rice fields in Yunnan Province",
        "A street food stall in Yaowarat, Bangkok's Chinatown",
        "Monks collecting alms in the early morning",
        "The university library's main reading room",
        "A steam locomotive preserved at the railway museum",
        "Fishing boats in the harbour at low tide",
        "The bridge under construction in 1932",
        "Flag of the prefecture",
        "Logo",
        "The author signing books at the Frankfurt Book Fair in 2019, with her publisher beside her and a long queue of readers waiting in the hall",
        "Aerial view of the city centre",
    ],
    "ja": [
        "芝公園から見た夜の東京タワー",
        "秋の清水寺の本堂",
        "日の出の河口湖に映る富士山",
        "小田原駅を通過する新幹線",
        "冬の慕田峪付近の万里の長城",
        "紫禁城の午門の前に立つ観光客",
        "日没後の上海の外灘の夜景",
        "成都の研究基地で竹を食べるジャイアントパンダ",
        "バンコクのチャオプラヤー川沿いに建つワット・アルン",
        "船から果物を売る水上マーケットの商人",
        "王室の儀式が行われているバンコクの王宮",
        "チェンマイ県の川で水浴びをする象",
        "1905年に撮影された作曲家の肖像",
        "祭壇の方向から見た大聖堂の内部",
        "1930年当時の鉄道網の地図",
        "1964年のオリンピック開会式の競技場",
        "東京の目黒川沿いに咲く桜",
        "京都の茶室で行われる伝統的な茶道",
        "瓦屋根が並ぶ麗江の旧市街",
        "雲南省の棚田",
        "バンコクの中華街ヤワラートの屋台",
        "早朝に托鉢をする僧侶たち",
        "大学図書館の中央閲覧室",
        "鉄道博物館に保存されている蒸気機関車",
        "干潮時の港に停泊する漁船",
        "1932年に建設中の橋",
        "県旗",
        "ロゴ",
        "2019年のフランクフルト・ブックフェアで出版社の担当者と並んで本にサインをする著者と会場で長い列を作って待つ読者たち",
        "市の中心部の航空写真",
    ],
    "zh": [
        "从芝公园看到的东京塔夜景",
        "秋天的清水寺正殿",
        "日出时倒映在河口湖中的富士山",
        "驶过小田原站的新干线列车",
        "冬季慕田峪附近的长城",
        "故宫午门前的游客",
        "日落后的上海外滩天际线",
        "成都研究基地里吃竹子的大熊猫",
        "曼谷湄南河畔的郑王庙",
        "在船上卖水果的水上市场商贩",
        "举行王室仪式时的曼谷大皇宫",
        "在清迈府河里洗澡的大象",
        "作曲家1905年的肖像",
        "从祭坛方向看去的大教堂内部",
        "1930年的铁路网地图",
        "1964年奥运会开幕式上的体育场",
        "东京目黑川沿岸盛开的樱花",
        "在京都茶室举行的传统茶道",
        "丽江古城的瓦屋顶",
        "云南省的梯田",
        "曼谷唐人街耀华力路的小吃摊",
        "清晨化缘的僧侣",
        "大学图书馆的主阅览室",
        "铁路博物馆里保存的蒸汽机车",
        "退潮时停在港口的渔船",
        "1932年正在建设中的大桥",
        "县旗",
        "标志",
        "2019年法兰克福书展上作者在出版人身旁为读者签名而大厅里排着长队等候的读者们",
        "市中心鸟瞰图",
    ],
    "th": [
        "หอคอยโตเกียวยามค่ำคืนมองจากสวนชิบะ",
        "อาคารหลักของวัดคิโยมิซุในฤดูใบไม้ร่วง",
        "ภูเขาไฟฟูจิสะท้อนในทะเลสาบคาวากุจิยามพระอาทิตย์ขึ้น",
        "รถไฟชินคันเซ็นแล่นผ่านสถานีโอดาวาระ",
        "กำแพงเมืองจีนใกล้มู่เถียนอวี่ในฤดูหนาว",
        "นักท่องเที่ยวหน้าประตูเที่ยงของพระราชวังต้องห้าม",
        "ทิวทัศน์เดอะบันด์ในเซี่ยงไฮ้หลังพระอาทิตย์ตก",
        "แพนด้ายักษ์กินไผ่ที่ศูนย์วิจัยในเฉิงตู",
        "วัดอรุณริมแม่น้ำเจ้าพระยาในกรุงเทพมหานคร",
        "แม่ค้าตลาดน้ำขายผลไม้จากเรือ",
        "พระบรมมหาราชวังในกรุงเทพฯ ระหว่างพระราชพิธี",
        "ช้างอาบน้ำในแม่น้ำที่จังหวัดเชียงใหม่",
        "ภาพเหมือนของคีตกวีในปี 1905",
        "ภายในมหาวิหารมองไปทางแท่นบูชา",
        "แผนที่เครือข่ายทางรถไฟในปี 1930",
        "สนามกีฬาระหว่างพิธีเปิดโอลิมปิกปี 1964",
        "ดอกซากุระริมแม่น้ำเมงุโระในโตเกียว",
        "พิธีชงชาแบบดั้งเดิมในโรงน้ำชาที่เกียวโต",
        "เมืองเก่าลี่เจียงกับหลังคากระเบื้อง",
        "นาขั้นบันไดในมณฑลยูนนาน",
        "แผงขายอาหารริมทางในเยาวราช ไชนาทาวน์ของกรุงเทพฯ",
        "พระสงฆ์บิณฑบาตในยามเช้าตรู่",
        "ห้องอ่านหนังสือหลักของห้องสมุดมหาวิทยาลัย",
        "หัวรถจักรไอน้ำที่เก็บรักษาไว้ในพิพิธภัณฑ์รถไฟ",
        "เรือประมงในท่าเรือขณะน้ำลง",
        "สะพานระหว่างการก่อสร้างในปี 1932",
        "ธงประจำจังหวัด",
        "โลโก้",
        "ผู้เขียนแจกลายเซ็นที่งานแสดงหนังสือแฟรงก์เฟิร์ตปี 2019 โดยมีผู้จัดพิมพ์อยู่ข้างๆ และผู้อ่านต่อแถวยาวรออยู่ในห้องโถง",
        "ภาพถ่ายทางอากาศของใจกลางเมือง",
    ],
}


def length_retention(
    captions: list[str],
    count: Callable[[str], list[str]],
    config: TextFilterConfig | None = None,
) -> float:
    """Share of captions the length filter keeps (min_words..max_words unigrams by `count`)."""
    config = config or TextFilterConfig()
    kept = [config.min_words <= len(count(caption)) <= config.max_words for caption in captions]
    return sum(kept) / len(kept)


def retention_table() -> dict[str, dict[str, float]]:
    """{language: {"icu": retention, "spaces": retention, "icu_vs_en": ratio}}."""
    english = length_retention(CAPTIONS["en"], unigrams)
    table = {}
    for language, captions in CAPTIONS.items():
        icu = length_retention(captions, unigrams)
        table[language] = {
            "icu": icu,
            "spaces": length_retention(captions, space_unigrams),
            "icu_vs_en": icu / english,
        }
    return table
