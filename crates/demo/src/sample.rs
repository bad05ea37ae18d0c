//! The sample county: enterprises with plausible names and valid credit codes, a registry of
//! reviewers with valid identity numbers, the relations that force recusals, and the scores
//! each panel gives. Plain data; the walk decides nothing, the services do.

use qaward_kit::cn;
use qaward_proto::qaward::reviewers::v1::RelationKind;

/// Yunyang county's administrative division code.
pub const YUNYANG: &str = "500235";
/// Wanzhou district, next door: its enterprises are not eligible for Yunyang's award.
pub const WANZHOU: &str = "500101";
/// Fengjie county, for a second programme drawing from the same registry.
pub const FENGJIE: &str = "500236";

/// An enterprise that applies, and what its panels will make of it. Scores are percentages
/// given to every item of the GB/T 19580 rubric (1,000 points) in the rubric's steps of 5,
/// so 70 means 700 points.
#[derive(Debug, Clone)]
pub struct Entrant {
    pub name: String,
    /// GB/T 4754 division (`C34`).
    pub industry: &'static str,
    pub division: &'static str,
    pub established: (i32, u8, u8),
    pub materials: i32,
    /// Out of 100.
    pub defence: &'static str,
    pub site: i32,
}

impl Entrant {
    fn new(
        name: &str,
        industry: &'static str,
        division: &'static str,
        materials: i32,
        defence: &'static str,
        site: i32,
    ) -> Entrant {
        Entrant {
            name: name.to_string(),
            industry,
            division,
            established: (2012, 4, 18),
            materials,
            defence,
            site,
        }
    }

    /// Its unified social credit code: the entrant's place in the plan makes the organisation
    /// part, the division comes from where it is registered.
    pub fn credit_code(&self, index: usize) -> String {
        let first17 = format!("91{}MA5U{:05}", self.division, 10_000 + index * 37 % 90_000);
        cn::with_check(&first17).unwrap_or_default()
    }
}

/// What the walk will do: the programme, the entrants and the office's decisions that are not
/// the services' to take (how a tie is broken, which complaint is unfounded).
#[derive(Debug, Clone)]
pub struct Plan {
    pub programme: String,
    pub display_name: String,
    /// The programme's county (settings `division_codes`).
    pub division: &'static str,
    pub entrants: Vec<Entrant>,
    /// When the office is told of a tie at the cut line: which tied entrants take the
    /// seats (`true`) and which do not, with the committee's reason.
    pub tie_break: Vec<(usize, bool)>,
    /// A department objecting to a candidate in the consultation, then overruled.
    pub objection: Option<usize>,
    /// A member of the public complaining about a candidate during the notice,
    /// found unfounded.
    pub complaint: Option<usize>,
    /// A report during the notice that a candidate forged its materials, substantiated: the
    /// candidate is disqualified and barred for the ban years (Art. 12(2)).
    pub fraud: Option<usize>,
    /// A citizen's tip-off about an applicant during the reviews, outside any public notice
    /// (Art. 6(5), R-52): accepted with a case number, not refused, and found unfounded.
    pub tip_off: Option<usize>,
    /// A candidate the committee adopts and the county government returns (Art. 16(10), R-23).
    pub returned: Option<usize>,
    /// An entrant whose agreed site score the group leaders' meeting raises by one item's 5 %
    /// when it unifies the groups' results (Art. 16(5)4).
    pub unified: Option<usize>,
    /// An entrant whose site visit a member of the group (not its leader) stops, and the office
    /// finds the stop unfounded: the visit resumes (Art. 16(5)3, R-15).
    pub site_stop: Option<usize>,
    /// Days after today the materials review window opens; later windows follow it. Two
    /// programmes with the same offset draw for overlapping days.
    pub window_offset: i64,
}

impl Plan {
    /// The demo: eight enterprises, one from the next district; one fails the materials
    /// threshold, one stops before the final selection, one is at exactly 500, two win.
    pub fn yunyang(programme: &str) -> Plan {
        Plan {
            programme: programme.to_string(),
            display_name: "云阳县县长质量奖".into(),
            division: YUNYANG,
            entrants: vec![
                Entrant::new("重庆云阳长江机械制造有限公司", "C34", YUNYANG, 80, "86", 75),
                Entrant::new("云阳县三峡食品股份有限公司", "C14", YUNYANG, 70, "82", 70),
                Entrant::new("重庆盛堡电子科技有限公司", "C39", YUNYANG, 65, "79", 60),
                Entrant::new("云阳县龙缸机电设备有限公司", "C34", YUNYANG, 50, "61", 40),
                Entrant::new("重庆红橙食品有限公司", "C14", YUNYANG, 60, "45", 30),
                Entrant::new("云阳县清水电子元件有限公司", "C39", YUNYANG, 55, "40", 25),
                Entrant::new("重庆天生建材有限公司", "C30", YUNYANG, 45, "0", 0),
                Entrant::new("重庆万州江城机械有限公司", "C34", WANZHOU, 80, "90", 80),
            ],
            tie_break: Vec::new(),
            objection: Some(1),
            complaint: Some(0),
            fraud: None,
            tip_off: Some(2),
            returned: None,
            unified: Some(0),
            site_stop: Some(1),
            window_offset: 3,
        }
    }

    /// A year in which nobody reaches 400: the award stays vacant.
    pub fn vacant(programme: &str) -> Plan {
        let mut p = Plan::yunyang(programme);
        p.entrants = vec![
            Entrant::new("重庆云阳长江机械制造有限公司", "C34", YUNYANG, 60, "30", 30),
            Entrant::new("云阳县三峡食品股份有限公司", "C14", YUNYANG, 50, "25", 30),
        ];
        p.objection = None;
        p.complaint = None;
        p.tip_off = None;
        p.unified = None;
        p.site_stop = None;
        p
    }

    /// Two entrants with equal composites at the cut line for the second seat: the
    /// office is told, and the committee's tie-break decides.
    pub fn tie(programme: &str) -> Plan {
        let mut p = Plan::yunyang(programme);
        p.entrants = vec![
            Entrant::new("重庆云阳长江机械制造有限公司", "C34", YUNYANG, 80, "86", 75),
            Entrant::new("云阳县三峡食品股份有限公司", "C14", YUNYANG, 70, "80", 65),
            Entrant::new("重庆盛堡电子科技有限公司", "C39", YUNYANG, 70, "80", 65),
        ];
        p.tie_break = vec![(1, true), (2, false)];
        // The government returns the second seat (Art. 16(10)): one winner.
        p.returned = Some(1);
        p.unified = None;
        p.site_stop = None;
        p.objection = None;
        p.complaint = None;
        p.tip_off = None;
        p
    }

    /// Another county's programme with its own enterprises, drawing from the same registry.
    pub fn fengjie(programme: &str) -> Plan {
        let mut p = Plan::yunyang(programme);
        p.display_name = "奉节县县长质量奖".into();
        p.division = FENGJIE;
        p.entrants = vec![
            Entrant::new("重庆奉节脐橙产业有限公司", "C14", FENGJIE, 75, "84", 70),
            Entrant::new("奉节县夔门机械有限公司", "C34", FENGJIE, 70, "80", 65),
            Entrant::new("重庆白帝城电子有限公司", "C39", FENGJIE, 65, "75", 60),
        ];
        p.objection = None;
        p.complaint = None;
        p.tip_off = None;
        p.unified = None;
        p.site_stop = None;
        p
    }

    pub fn codes(&self) -> Vec<String> {
        self.entrants
            .iter()
            .enumerate()
            .map(|(i, e)| e.credit_code(i))
            .collect()
    }
}

/// A reviewer of the registry.
pub struct SampleReviewer {
    pub certificate: String,
    pub name: &'static str,
}

const NAMES: [&str; 24] = [
    "刘建国",
    "陈静",
    "王海燕",
    "张卫东",
    "李秀英",
    "杨志强",
    "赵丽华",
    "黄国平",
    "周晓明",
    "吴桂芳",
    "徐永红",
    "孙建华",
    "胡玉兰",
    "朱德明",
    "高春梅",
    "林志刚",
    "何淑贞",
    "郭明亮",
    "马秀兰",
    "罗文斌",
    "梁红霞",
    "宋立新",
    "郑雅琴",
    "谢长青",
];

/// The registry every programme draws from: 24 quality-award reviewers, each expert in three
/// of the four industries of the applicants, every third qualified to lead a group.
pub fn reviewers() -> Vec<SampleReviewer> {
    NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| SampleReviewer {
            certificate: format!("CQZJ-{:04}", i + 1),
            name,
        })
        .collect()
}

/// The registry as the office's spreadsheet (CSV, UTF-8, Chinese headers). 刘建国 works for the
/// first Yunyang entrant (employer code); 谢长青's certificate lapsed at the end of 2025.
pub fn registry_csv() -> Vec<u8> {
    let industries = ["C14", "C30", "C34", "C39"];
    let first = Plan::yunyang("yunyang").codes()[0].clone();
    let mut s = "姓名,手机号,身份证号,证书编号,证书有效期起,证书有效期止,专业,工作单位统一社会信用代码,组长资格,状态\n".to_string();
    for (i, r) in reviewers().iter().enumerate() {
        let specialities: Vec<&str> = (0..3).map(|k| industries[(i + k) % 4]).collect();
        let born = 1962 + (i as i32 * 7) % 25;
        let id = cn::resident_id_with_check(&format!(
            "500235{born}{:02}{:02}{:03}",
            1 + i % 12,
            1 + (i * 5) % 28,
            100 + i * 3
        ))
        .unwrap_or_default();
        let until = if i == 23 { "2025-12-31" } else { "2029-12-31" };
        let employer = if i == 0 { first.as_str() } else { "" };
        s.push_str(&format!(
            "{},13{:09},{id},{},2023-01-01,{until},{},{employer},{},在册\n",
            r.name,
            900_000_000 + i * 7_919,
            r.certificate,
            specialities.join(";"),
            if i % 3 == 1 { "是" } else { "否" },
        ));
    }
    s.into_bytes()
}

/// Declared relations the registry holds besides employment: each keeps its reviewer
/// out of any group reviewing that enterprise.
pub fn relations() -> Vec<(usize, usize, RelationKind, &'static str)> {
    vec![
        (
            1,
            1,
            RelationKind::Consultancy,
            "2025年为该企业提供卓越绩效咨询服务",
        ),
        (2, 2, RelationKind::Kinship, "配偶在该企业任质量部经理"),
    ]
}
